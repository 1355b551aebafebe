/** A form's error line (nothing when there is no error). */
export function FormError({ text }: { text: string | null }) {
  if (!text) return null;
  return (
    <p className="form-error" data-testid="form-error" role="alert">
      {text}
    </p>
  );
}
