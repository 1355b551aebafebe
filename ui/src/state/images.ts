// Image messages: the size their thumbnail takes in the list (known from the message, so the
// row never jumps when the picture decodes), its data URL, and the full-size viewer.
import { create } from 'zustand';
import type { MessageBody } from '../bindings';

export type ImageBody = Extract<MessageBody, { kind: 'image' }>;

/** The largest box a thumbnail takes in a bubble. */
export const THUMB_MAX_W = 260;
export const THUMB_MAX_H = 260;
/** Thinner than this and a thumbnail is cropped rather than shrunk to a line. */
export const THUMB_MIN = 48;

/** The on-screen size of an image's thumbnail: its aspect ratio within the box, never enlarged. */
export function thumbSize(width: number, height: number): { width: number; height: number } {
  if (!(width > 0) || !(height > 0)) return { width: THUMB_MAX_W / 2, height: THUMB_MAX_H / 2 };
  const scale = Math.min(1, THUMB_MAX_W / width, THUMB_MAX_H / height);
  return {
    width: Math.max(THUMB_MIN, Math.round(width * scale)),
    height: Math.max(THUMB_MIN, Math.round(height * scale)),
  };
}

/** The inline thumbnail as a data URL (JPEG or PNG, told by its first bytes). */
export function thumbnailSrc(thumbnail: string): string {
  const mime = thumbnail.startsWith('/9j/') ? 'image/jpeg' : 'image/png';
  return `data:${mime};base64,${thumbnail}`;
}

/** The size the full image is shown at in a viewport: fitted, never enlarged. */
export function fitSize(
  width: number,
  height: number,
  maxW: number,
  maxH: number,
): { width: number; height: number } {
  if (!(width > 0) || !(height > 0)) return { width: maxW, height: maxH };
  const scale = Math.min(1, maxW / width, maxH / height);
  return { width: Math.round(width * scale), height: Math.round(height * scale) };
}

interface ViewerState {
  image: ImageBody | null;
}

/** The image open full size, if any. */
export const useViewer = create<ViewerState>(() => ({ image: null }));

export function openImage(image: ImageBody): void {
  useViewer.setState({ image });
}

export function closeImage(): void {
  useViewer.setState({ image: null });
}
