// Servers on the LAN and the one this computer may host. The list comes from the shell's mDNS
// browser (an event on every change); hosting is started and stopped by the user.
import { create } from 'zustand';
import type { HostInfo, LanServer } from '../bindings';
import { call } from '../backend';

interface LanState {
  servers: readonly LanServer[];
  /** This computer's server, while it hosts one. */
  hosting: HostInfo | null;
}

export const useLan = create<LanState>(() => ({ servers: [], hosting: null }));

export function setLanServers(servers: readonly LanServer[]): void {
  useLan.setState({ servers });
}

/** The list and the hosting state as they are now (the events only bring changes). */
export async function loadLan(): Promise<void> {
  try {
    const [servers, hosting] = await Promise.all([call('lan_servers', {}), call('host_info', {})]);
    useLan.setState({ servers, hosting });
  } catch {
    // No list is shown; the address form still works.
  }
}

/** Hosts a server on this computer; throws the shell's error. */
export async function startHosting(): Promise<void> {
  useLan.setState({ hosting: await call('host_start', {}) });
}

/** Stops hosting; throws the shell's error. */
export async function stopHosting(): Promise<void> {
  await call('host_stop', {});
  useLan.setState({ hosting: null });
}

/** Whether a listed server is the one this computer hosts. */
export function isOwnServer(server: LanServer, hosting: HostInfo | null): boolean {
  return hosting !== null && hosting.fingerprint === server.fingerprint;
}
