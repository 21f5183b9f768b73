/**
 * Which Accept-Encoding headers earn a gzipped entry bundle (RFC 9110 §12.5.3): a listed gzip
 * (or x-gzip, the same coding) decides by its own q; `*` only speaks for codings not listed.
 */
import { describe, expect, it } from 'vitest';
import { acceptsGzip } from './log-entries.ts';

describe('acceptsGzip', () => {
  it.each([
    [undefined, false],
    ['', false],
    ['identity', false],
    ['br, deflate', false],
    ['gzip', true],
    ['GZIP', true],
    ['x-gzip', true],
    ['br, gzip;q=0.5', true],
    ['gzip;q=1.000', true],
    ['gzip; q=0.001', true],
    ['gzip;q=0', false],
    ['gzip;q=0.000', false],
    ['gzip;q=0, identity', false],
    ['*', true],
    ['*;q=0.1', true],
    ['*;q=0', false],
    // `*` matches only codings not listed: gzip listed with q=0 stays refused.
    ['gzip;q=0, *', false],
    ['*, gzip;q=0', false],
    ['x-gzip;q=0, *', false],
    ['gzip;q=0, *;q=1', false],
    // A listed gzip decides even when `*` refuses the rest.
    ['gzip;q=0.5, *;q=0', true],
    ['*;q=0, gzip', true],
    // gzip and x-gzip are one coding: either one's acceptance is enough.
    ['gzip;q=0, x-gzip', true],
    // A q that is not a qvalue earns nothing: the plain bytes suit every client.
    ['gzip;q=2', false],
    ['gzip;q=abc', false],
    ['gzip;q=0.0001', false],
    ['gzip;q=abc, *', false],
  ])('%j → %s', (header, expected) => {
    expect(acceptsGzip(header)).toBe(expected);
  });
});
