import { SquareIcon } from './Icons';

/** A stable hue for a username (FNV-1a over its lowercase form). */
export function avatarHue(username: string): number {
  let h = 0x811c9dc5;
  for (const c of username.toLowerCase()) {
    h ^= c.codePointAt(0) ?? 0;
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % 360;
}

function initial(name: string): string {
  const first = [...name.trim()][0];
  return first ? first.toUpperCase() : '?';
}

export function Avatar({
  username,
  name,
  size = 36,
}: {
  username: string;
  name?: string;
  size?: number;
}) {
  return (
    <span
      className="avatar"
      aria-hidden="true"
      style={{
        width: size,
        height: size,
        fontSize: Math.round(size * 0.44),
        background: `hsl(${avatarHue(username)} 55% 52%)`,
      }}
    >
      {initial(name ?? username)}
    </span>
  );
}

export function SquareAvatar({ size = 36 }: { size?: number }) {
  return (
    <span className="avatar avatar-square" aria-hidden="true" style={{ width: size, height: size }}>
      <SquareIcon width={size * 0.5} height={size * 0.5} />
    </span>
  );
}
