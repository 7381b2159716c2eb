import { describe, expect, it } from 'vitest';
import {
  allowedRequestHeaders,
  CORS_REQUEST_HEADERS,
  DEFAULT_ALLOWED_ORIGINS,
  hostnameOf,
  isOriginAllowed,
} from '../../src/server/guards.js';

describe('isOriginAllowed with the default list', () => {
  const allowed = (origin: string) => isOriginAllowed(origin, DEFAULT_ALLOWED_ORIGINS);

  it('allows loopback pages on any port and the hosted Claude and ChatGPT apps', () => {
    for (const origin of [
      'http://localhost',
      'http://localhost:3000',
      'http://127.0.0.1:8080',
      'http://[::1]:5173',
      'https://claude.ai',
      'https://claude.com',
      'https://chatgpt.com',
      'https://chat.openai.com',
      'https://abc.claudeusercontent.com',
      'https://x.y.openai.com',
    ]) {
      expect(allowed(origin), origin).toBe(true);
    }
  });

  it('refuses look-alikes, other schemes, other ports of fixed origins and opaque origins', () => {
    for (const origin of [
      'https://evil.example',
      'https://claude.ai.evil.example',
      'https://evilclaude.ai',
      'http://claude.ai',
      'https://claude.ai:8443',
      'https://claudeusercontent.com',
      'https://openai.com.evil.example',
      'null',
      'file://',
      'not a url',
      'https://claude.ai/path',
    ]) {
      expect(allowed(origin), origin).toBe(false);
    }
  });

  it('accepts configured exact and wildcard patterns', () => {
    expect(isOriginAllowed('https://app.example.com', ['https://app.example.com'])).toBe(true);
    expect(isOriginAllowed('https://a.example.com', ['https://*.example.com'])).toBe(true);
    expect(isOriginAllowed('https://example.com', ['https://*.example.com'])).toBe(false);
    expect(isOriginAllowed('https://a.example.com:444', ['https://*.example.com:444'])).toBe(true);
  });
});

describe('hostnameOf', () => {
  it('strips the port and keeps IPv6 brackets', () => {
    expect(hostnameOf('localhost:8769')).toBe('localhost');
    expect(hostnameOf('LOCALHOST')).toBe('localhost');
    expect(hostnameOf('[::1]:8769')).toBe('[::1]');
    expect(hostnameOf('127.0.0.1')).toBe('127.0.0.1');
  });
});

describe('allowedRequestHeaders', () => {
  it('always lists the 2026-07-28 standard headers', () => {
    expect(allowedRequestHeaders(undefined)).toEqual(expect.arrayContaining(['Mcp-Method', 'Mcp-Name']));
  });

  it('adds each Mcp-Param-* header asked for, once whatever its case, and nothing else', () => {
    expect(
      allowedRequestHeaders(
        'mcp-param-region, Mcp-Param-Region, X-Other, mcp-param-, mcp-paramx, mcp-param-a b',
      ),
    ).toEqual([...CORS_REQUEST_HEADERS, 'mcp-param-region']);
  });
});
