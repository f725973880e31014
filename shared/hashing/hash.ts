/**
 * A fast, well-mixed, deterministic 32-bit string hash: FNV-1a over the string's UTF-8 bytes,
 * then the murmur3 `fmix32` finalizer (FNV-1a alone mixes its last bytes poorly into the high
 * bits, which matters when nearby keys such as `q/0`, `q/1` must land far apart on a ring).
 *
 * Pure integer arithmetic (`Math.imul`), no allocation and no runtime APIs, so it returns the
 * same value in Node and in Cloudflare Workers. Not cryptographic: do not use it where an
 * adversary choosing keys could matter.
 */

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/**
 * 32-bit FNV-1a of the UTF-8 encoding of `s` (unsigned). The encoding is done inline and matches
 * `TextEncoder`: surrogate pairs become 4-byte sequences and a lone surrogate becomes U+FFFD.
 */
export function fnv1a32(s: string): number {
  let h = FNV_OFFSET;
  const n = s.length;
  for (let i = 0; i < n; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      h = Math.imul(h ^ c, FNV_PRIME);
      continue;
    }
    if (c < 0x800) {
      h = Math.imul(h ^ (0xc0 | (c >> 6)), FNV_PRIME);
      h = Math.imul(h ^ (0x80 | (c & 0x3f)), FNV_PRIME);
      continue;
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = i + 1 < n ? s.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        // A valid surrogate pair: one code point in U+10000..U+10FFFF, four bytes.
        const cp = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
        i++;
        h = Math.imul(h ^ (0xf0 | (cp >> 18)), FNV_PRIME);
        h = Math.imul(h ^ (0x80 | ((cp >> 12) & 0x3f)), FNV_PRIME);
        h = Math.imul(h ^ (0x80 | ((cp >> 6) & 0x3f)), FNV_PRIME);
        h = Math.imul(h ^ (0x80 | (cp & 0x3f)), FNV_PRIME);
        continue;
      }
      c = 0xfffd; // lone surrogate, as TextEncoder does
    }
    h = Math.imul(h ^ (0xe0 | (c >> 12)), FNV_PRIME);
    h = Math.imul(h ^ (0x80 | ((c >> 6) & 0x3f)), FNV_PRIME);
    h = Math.imul(h ^ (0x80 | (c & 0x3f)), FNV_PRIME);
  }
  return h >>> 0;
}

/** The murmur3 32-bit finalizer: a bijection on uint32 with full avalanche. */
export function fmix32(x: number): number {
  let h = x | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The 32-bit hash (unsigned, in [0, 2^32)) of `s`: `fmix32(fnv1a32(utf8(s)))`. */
export function hash32(s: string): number {
  return fmix32(fnv1a32(s));
}
