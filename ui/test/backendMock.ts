// The stand-in for src/backend.ts that most unit tests share:
//   vi.mock('../src/backend', () => import('./backendMock'));
// Every command and listener is a bare vi.fn(); a test gives answers with
// vi.mocked(call).mockImplementation(…). Suites that need other defaults mock inline.
import { vi } from 'vitest';

export const call = vi.fn();
export const onEvent = vi.fn();
export const sendImageData = vi.fn();
export const imageUrl = (id: string) => `natter-image://localhost/${id}`;
export const toIpcError = (e: unknown) => e;
