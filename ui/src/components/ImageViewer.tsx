import { useEffect, useRef, useState } from 'react';
import { call, imageUrl } from '../backend';
import { useI18n } from '../i18n';
import { errorText } from '../i18n/errors';
import { formatBytes } from '../i18n/format';
import { closeImage, fitSize, thumbnailSrc, useViewer, type ImageBody } from '../state/images';
import { CloseIcon } from './Icons';

function viewport(): { width: number; height: number } {
  return { width: window.innerWidth - 96, height: window.innerHeight - 140 };
}

function Viewer({ image }: { image: ImageBody }) {
  const { t, locale } = useI18n();
  const [state, setState] = useState<'loading' | 'loaded' | 'error'>('loading');
  // Why it failed, when the shell can say: an <img> error carries no reason.
  const [reason, setReason] = useState<string | null>(null);
  const [box, setBox] = useState(viewport);
  const closeRef = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        e.stopPropagation();
        closeImage();
      }
    };
    const onResize = () => setBox(viewport());
    window.addEventListener('keydown', onKey);
    window.addEventListener('resize', onResize);
    closeRef.current?.focus();
    return () => {
      window.removeEventListener('keydown', onKey);
      window.removeEventListener('resize', onResize);
    };
  }, []);

  const size = fitSize(
    image.width,
    image.height,
    Math.max(box.width, 120),
    Math.max(box.height, 120),
  );
  return (
    <div
      className="viewer-backdrop"
      role="dialog"
      aria-modal="true"
      aria-label={t('image.viewer')}
      data-testid="image-viewer"
      data-state={state}
      onMouseDown={(e) => {
        if (e.target === e.currentTarget) closeImage();
      }}
    >
      <button
        ref={closeRef}
        type="button"
        className="viewer-close"
        onClick={closeImage}
        aria-label={t('image.close')}
        title={t('image.close')}
        data-testid="image-viewer-close"
      >
        <CloseIcon width={22} height={22} />
      </button>
      <div className="viewer-frame" style={{ width: size.width, height: size.height }}>
        {state !== 'loaded' && (
          <img className="viewer-placeholder" src={thumbnailSrc(image.thumbnail)} alt="" />
        )}
        {state !== 'error' && (
          <img
            className={`viewer-image ${state === 'loaded' ? 'viewer-image-loaded' : ''}`}
            src={imageUrl(image.file_id)}
            alt={image.name}
            width={size.width}
            height={size.height}
            onLoad={() => setState('loaded')}
            onError={() => {
              setState('error');
              call('image_problem', { file_id: image.file_id }).catch((e: unknown) => {
                setReason(errorText(e as { code: string; message: string }, t));
              });
            }}
            data-testid="image-full"
          />
        )}
        {state === 'loading' && <div className="viewer-status">{t('image.loading')}</div>}
        {state === 'error' && (
          <div className="viewer-status viewer-error" data-testid="image-error">
            {t('image.error')}
            {reason && (
              <span className="viewer-error-reason" data-testid="image-error-reason">
                {' '}
                {reason}
              </span>
            )}
          </div>
        )}
      </div>
      <div className="viewer-caption">
        <span className="viewer-name">{image.name}</span>
        <span>
          {image.width} × {image.height} · {formatBytes(image.size, locale, t)}
        </span>
      </div>
    </div>
  );
}

/** The image opened from a thumbnail, full size over the app; Escape or the backdrop closes it. */
export function ImageViewer() {
  const image = useViewer((s) => s.image);
  if (!image) return null;
  return <Viewer key={image.file_id} image={image} />;
}
