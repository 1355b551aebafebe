// Limits of a text message (PROTOCOL.md §6).
export const TEXT_MAX_BYTES = 16_384;
/** Show the byte counter once a message uses this much of the limit. */
export const COUNTER_FROM_BYTES = 14_000;

const encoder = new TextEncoder();

export function utf8Length(text: string): number {
  return encoder.encode(text).length;
}

/** Not empty or only whitespace, and within the byte limit. */
export function canSend(text: string): boolean {
  return text.trim().length > 0 && utf8Length(text) <= TEXT_MAX_BYTES;
}
