import { useCallback, useState } from 'react';
import { toIpcError } from '../backend';
import { useI18n } from '../i18n';
import { errorText } from '../i18n/errors';

/**
 * A user action that talks to the backend: `busy` while it runs (buttons disable), and its
 * failure as a translated sentence. Resolves `true` when the action succeeded.
 */
export function useAction(initialError: string | null = null) {
  const { t } = useI18n();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(initialError);
  const run = useCallback(
    async (action: () => Promise<unknown>): Promise<boolean> => {
      setBusy(true);
      setError(null);
      try {
        await action();
        return true;
      } catch (err) {
        setError(errorText(toIpcError(err), t));
        return false;
      } finally {
        setBusy(false);
      }
    },
    [t],
  );
  return { busy, error, run };
}
