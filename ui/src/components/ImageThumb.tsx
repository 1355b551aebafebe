import { useI18n } from '../i18n';
import { openImage, thumbSize, thumbnailSrc, type ImageBody } from '../state/images';

/** An image message's inline thumbnail, at the size the message announces (no layout jump). */
export function ImageThumb({ body }: { body: ImageBody }) {
  const { t } = useI18n();
  const size = thumbSize(body.width, body.height);
  return (
    <button
      type="button"
      className="msg-image"
      style={{ width: size.width, height: size.height }}
      onClick={() => openImage(body)}
      aria-label={t('image.open', { name: body.name })}
      title={body.name}
      data-testid="image-thumb"
      data-file-id={body.file_id}
    >
      <img
        src={thumbnailSrc(body.thumbnail)}
        alt={body.name}
        width={size.width}
        height={size.height}
        draggable={false}
      />
    </button>
  );
}
