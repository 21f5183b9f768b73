/**
 * Strict standard base64 (RFC 4648 §4) for the text formats. Buffer.from(text, 'base64')
 * skips characters it does not know and accepts missing padding, so two different strings
 * could decode to the same signature or root; a log format must have one spelling per value.
 */
const base64Pattern = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Decodes canonical base64, or returns undefined (padding bits set, bad characters, no padding). */
export function decodeBase64Strict(text: string): Buffer | undefined {
  const bytes = decodeBase64Padded(text);
  // Re-encoding catches non-zero padding bits, the last way two spellings can share a value.
  return bytes !== undefined && bytes.toString('base64') === text ? bytes : undefined;
}

export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/**
 * Decodes padded standard base64 as Go's base64.StdEncoding does, padding bits ignored: for
 * signature lines of signed notes, where a verifier must accept what Go's note.Open accepts
 * (the signature bytes, not the line's spelling, are what is verified).
 */
export function decodeBase64Padded(text: string): Buffer | undefined {
  return base64Pattern.test(text) ? Buffer.from(text, 'base64') : undefined;
}
