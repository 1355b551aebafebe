import { act, fireEvent, render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { call } from '../src/backend';
import { ImageThumb } from '../src/components/ImageThumb';
import { ImageViewer } from '../src/components/ImageViewer';
import { setLocale } from '../src/i18n';
import {
  closeImage,
  fitSize,
  THUMB_MAX_H,
  THUMB_MAX_W,
  thumbnailSrc,
  thumbSize,
  useViewer,
  type ImageBody,
} from '../src/state/images';

vi.mock('../src/backend', () => import('./backendMock'));

const image: ImageBody = {
  kind: 'image',
  file_id: 'f-cat',
  name: '猫.png',
  mime: 'image/png',
  size: 2_400_000,
  width: 1600,
  height: 1200,
  thumbnail: 'iVBORw0KGgo=',
};

beforeEach(() => {
  closeImage();
  setLocale('en');
});

describe('thumbnail size', () => {
  it('keeps the aspect ratio inside the box and never enlarges', () => {
    expect(thumbSize(1600, 1200)).toEqual({ width: THUMB_MAX_W, height: 195 });
    expect(thumbSize(600, 2400)).toEqual({ width: 65, height: THUMB_MAX_H });
    expect(thumbSize(100, 80)).toEqual({ width: 100, height: 80 });
  });

  it('crops rather than draws a line for extreme shapes, and survives bad sizes', () => {
    expect(thumbSize(10_000, 10)).toEqual({ width: THUMB_MAX_W, height: 48 });
    expect(thumbSize(0, 0)).toEqual({ width: THUMB_MAX_W / 2, height: THUMB_MAX_H / 2 });
  });

  it('fits the full image into the window', () => {
    expect(fitSize(4000, 2000, 1000, 800)).toEqual({ width: 1000, height: 500 });
    expect(fitSize(300, 200, 1000, 800)).toEqual({ width: 300, height: 200 });
  });

  it('tells JPEG from PNG thumbnails', () => {
    expect(thumbnailSrc('/9j/4AAQ')).toBe('data:image/jpeg;base64,/9j/4AAQ');
    expect(thumbnailSrc('iVBORw0')).toBe('data:image/png;base64,iVBORw0');
  });
});

describe('an image message', () => {
  it('reserves its size and opens full size on click; Escape closes', async () => {
    render(
      <>
        <ImageThumb body={image} />
        <ImageViewer />
      </>,
    );
    const thumb = screen.getByTestId('image-thumb');
    expect(thumb).toHaveStyle({ width: '260px', height: '195px' });
    expect(thumb.querySelector('img')).toHaveAttribute('src', thumbnailSrc(image.thumbnail));
    expect(screen.queryByTestId('image-viewer')).toBeNull();

    await userEvent.click(thumb);
    const viewer = screen.getByTestId('image-viewer');
    expect(viewer).toHaveAttribute('data-state', 'loading');
    expect(viewer).toHaveTextContent('Loading the full image');
    expect(viewer).toHaveTextContent('1600 × 1200 · 2.3 MB');
    const full = screen.getByTestId('image-full');
    expect(full).toHaveAttribute('src', 'natter-image://localhost/f-cat');
    fireEvent.load(full);
    expect(viewer).toHaveAttribute('data-state', 'loaded');

    await userEvent.keyboard('{Escape}');
    expect(screen.queryByTestId('image-viewer')).toBeNull();
  });

  it("says so when the full image cannot be loaded, and why in the reader's language", async () => {
    vi.mocked(call).mockRejectedValueOnce({
      code: 'checksum',
      message: 'the received file does not match its checksum (expected a, got b)',
    });
    setLocale('zh-CN');
    render(<ImageViewer />);
    act(() => useViewer.setState({ image }));
    fireEvent.error(screen.getByTestId('image-full'));
    expect(screen.getByTestId('image-error')).toHaveTextContent('原图加载失败');
    expect(await screen.findByTestId('image-error-reason')).toHaveTextContent('校验值不符');
    expect(vi.mocked(call)).toHaveBeenCalledWith('image_problem', { file_id: 'f-cat' });
    fireEvent.click(screen.getByTestId('image-viewer-close'));
    expect(screen.queryByTestId('image-viewer')).toBeNull();
  });

  it('shows no reason when the shell finds nothing wrong any more', async () => {
    vi.mocked(call).mockResolvedValueOnce(null);
    render(<ImageViewer />);
    act(() => useViewer.setState({ image }));
    fireEvent.error(screen.getByTestId('image-full'));
    expect(screen.getByTestId('image-error')).toHaveTextContent('could not be loaded');
    await act(async () => {});
    expect(screen.queryByTestId('image-error-reason')).toBeNull();
  });
});
