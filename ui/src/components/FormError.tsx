import type { ReactNode } from 'react';

/** A form's error line (nothing when there is no error). */
export function FormError({ text }: { text: string | null }) {
  if (!text) return null;
  return (
    <p className="form-error" data-testid="form-error" role="alert">
      {text}
    </p>
  );
}

/** The foot of a dialog's form: its error line, then Cancel beside the form's own submit. */
export function DialogActions({
  error,
  onCancel,
  cancelLabel,
  children,
}: {
  error: string | null;
  onCancel: () => void;
  cancelLabel: string;
  children: ReactNode;
}) {
  return (
    <>
      <FormError text={error} />
      <div className="button-row">
        <button type="button" className="button" onClick={onCancel}>
          {cancelLabel}
        </button>
        {children}
      </div>
    </>
  );
}
