import { act, render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { TransferInfo } from '../src/bindings';
import { call } from '../src/backend';
import { FileCard, type FileBody } from '../src/components/FileCard';
import { UploadTray } from '../src/components/UploadTray';
import { setLocale } from '../src/i18n';
import { applyTransfer, resetTransfers, useTransfers } from '../src/state/transfers';
import { transfer } from './fixtures';

vi.mock('../src/backend', () => import('./backendMock'));

const mockedCall = vi.mocked(call);
const MB = 1024 * 1024;

function bodyOf(t: TransferInfo): FileBody {
  return { kind: 'file', file_id: t.file_id, name: t.name, size: t.size, sha256: t.sha256 };
}

function card(t: TransferInfo, peer = 'Bobby') {
  applyTransfer(t);
  render(<FileCard body={bodyOf(t)} peerName={peer} />);
  return screen.getByTestId('file-card');
}

function buttons(el: HTMLElement): string[] {
  return within(el)
    .queryAllByRole('button')
    .map((b) => b.textContent ?? '');
}

beforeEach(() => {
  mockedCall.mockReset();
  resetTransfers();
  setLocale('en');
});

describe('a file card', () => {
  it('shows name, size and Accept / Decline to the receiver of an offer', async () => {
    const t = transfer({ name: '季度报告 2024.pdf', size: 10 * MB, state: 'offered' });
    const el = card(t);
    expect(el).toHaveTextContent('季度报告 2024.pdf');
    expect(el).toHaveTextContent('10 MB');
    expect(el).toHaveTextContent('Bobby offers you a file');
    expect(el).toHaveAttribute('data-state', 'offered');
    expect(buttons(el)).toEqual(['Accept', 'Decline']);

    const accepted = { ...t, state: 'downloading' as const, accepted: true };
    mockedCall.mockResolvedValue(accepted);
    await userEvent.click(screen.getByTestId('transfer-accept'));
    expect(mockedCall).toHaveBeenCalledWith('accept_file', { file_id: t.file_id, dest: null });
    // The engine's event moves the card (the command's answer may come after it).
    act(() => applyTransfer(accepted));
    expect(await screen.findByTestId('transfer-progress')).toBeInTheDocument();
    expect(screen.getByTestId('file-card')).toHaveAttribute('data-state', 'downloading');
  });

  it('stays an offer when the save dialog is cancelled', async () => {
    const t = transfer({ state: 'offered' });
    card(t);
    mockedCall.mockResolvedValue(null);
    await userEvent.click(screen.getByTestId('transfer-accept'));
    expect(screen.getByTestId('file-card')).toHaveAttribute('data-state', 'offered');
  });

  it('shows progress with percent, speed and time left, and Pause / Cancel', () => {
    const el = card(transfer({ state: 'downloading', size: 10 * MB, done: 4 * MB, rate: 2 * MB }));
    expect(screen.getByTestId('transfer-progress')).toHaveAttribute('data-percent', '40');
    expect(el).toHaveTextContent('40% · 4 MB of 10 MB');
    expect(el).toHaveTextContent('2 MB/s · 3 s left');
    expect(el).toHaveTextContent('Downloading');
    expect(buttons(el)).toEqual(['Pause', 'Cancel']);
  });

  it('says Paused and offers Resume', async () => {
    const t = transfer({ state: 'paused', direction: 'up', done: 5 * MB, rate: 0 });
    const el = card(t);
    expect(el).toHaveTextContent('Paused');
    expect(buttons(el)).toEqual(['Resume', 'Cancel']);
    mockedCall.mockResolvedValue({ ...t, state: 'uploading' });
    await userEvent.click(screen.getByTestId('transfer-resume'));
    expect(mockedCall).toHaveBeenCalledWith('resume_transfer', { file_id: t.file_id });
  });

  it('tells the sender it waits for the receiver', () => {
    const el = card(transfer({ state: 'uploaded', direction: 'up', done: 10 * MB }));
    expect(el).toHaveTextContent('Uploaded · waiting for Bobby to accept');
    expect(buttons(el)).toEqual(['Cancel']);
  });

  it('says where a received file was saved and can show it', async () => {
    const t = transfer({ state: 'done', path: '/home/alice/Downloads/report.pdf' });
    const el = card(t);
    expect(el).toHaveTextContent('Saved to /home/alice/Downloads/report.pdf');
    mockedCall.mockResolvedValue(null);
    await userEvent.click(screen.getByTestId('transfer-show'));
    expect(mockedCall).toHaveBeenCalledWith('show_transfer', { file_id: t.file_id });
  });

  it('explains declined, cancelled and failed transfers', () => {
    const declined = card(transfer({ state: 'rejected', direction: 'up' }));
    expect(declined).toHaveTextContent('Bobby declined the file');
    expect(buttons(declined)).toEqual([]);
    useTransfers.setState({ byId: {} });
    document.body.innerHTML = '';
    const failed = card(transfer({ state: 'failed', error: 'the SHA-256 does not match' }));
    expect(failed).toHaveTextContent('Failed: the SHA-256 does not match');
  });

  it('shows why a button failed, in words', async () => {
    const el = card(transfer({ state: 'offered' }));
    mockedCall.mockRejectedValue({ code: 'quota_exceeded', message: 'quota' });
    await userEvent.click(screen.getByTestId('transfer-accept'));
    expect(el).toHaveTextContent('Your storage on the server is full');
  });

  it('says nothing about an unknown transfer until the list is in, then that it is unknown', () => {
    const t = transfer({ file_id: 'elsewhere' });
    render(<FileCard body={bodyOf(t)} peerName="Bobby" />);
    expect(screen.queryByTestId('file-status')).toBeNull();
    act(() => useTransfers.setState({ loaded: true }));
    expect(screen.getByTestId('file-status')).toHaveTextContent('not known on this device');
  });

  it('follows the engine live', () => {
    const t = transfer({ state: 'downloading', size: 100, done: 10, rate: 10 });
    card(t);
    expect(screen.getByTestId('transfer-progress')).toHaveAttribute('data-percent', '10');
    act(() => applyTransfer({ ...t, done: 70 }));
    expect(screen.getByTestId('transfer-progress')).toHaveAttribute('data-percent', '70');
  });

  it('speaks Chinese', () => {
    setLocale('zh-CN');
    const el = card(transfer({ state: 'downloading', size: 10 * MB, done: 5 * MB, rate: MB }));
    expect(el).toHaveTextContent('正在下载');
    expect(el).toHaveTextContent('剩余 5 秒');
    expect(buttons(el)).toEqual(['暂停', '取消']);
  });
});

describe('the upload tray', () => {
  it('lists this chat’s image uploads with progress, and failed ones until dismissed', async () => {
    applyTransfer(
      transfer({
        file_id: 'a',
        kind: 'image',
        direction: 'up',
        name: 'cat.png',
        state: 'uploading',
        size: 100,
        done: 50,
        rate: 25,
      }),
    );
    applyTransfer(
      transfer({
        file_id: 'b',
        kind: 'image',
        direction: 'up',
        name: 'dog.png',
        state: 'failed',
        error: 'file_too_large',
      }),
    );
    render(<UploadTray convKey="user:bob" />);
    const uploads = screen.getAllByTestId('upload');
    expect(uploads).toHaveLength(2);
    expect(uploads[0]).toHaveTextContent('Sending cat.png');
    expect(uploads[0]).toHaveTextContent('50%');
    expect(uploads[1]).toHaveTextContent('Failed: file_too_large');
    await userEvent.click(screen.getByTestId('upload-dismiss'));
    expect(screen.getAllByTestId('upload')).toHaveLength(1);
  });
});
