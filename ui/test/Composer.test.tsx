import { fireEvent, render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { Composer } from '../src/components/Composer';
import { TEXT_MAX_BYTES } from '../src/state/text';

function setup(key = `k${Math.random()}`) {
  const onSend = vi.fn<(text: string) => Promise<void>>().mockResolvedValue(undefined);
  render(<Composer draftKey={key} onSend={onSend} />);
  const input = screen.getByTestId('composer-input') as HTMLTextAreaElement;
  return { onSend, input, user: userEvent.setup() };
}

describe('the composer', () => {
  it('sends on Enter and clears', async () => {
    const { onSend, input, user } = setup();
    await user.click(input);
    await user.keyboard('hello{Enter}');
    expect(onSend).toHaveBeenCalledWith('hello');
    expect(input.value).toBe('');
  });

  it('adds a new line on Shift+Enter and keeps it in the sent text', async () => {
    const { onSend, input, user } = setup();
    await user.click(input);
    await user.keyboard('line one{Shift>}{Enter}{/Shift}line two');
    expect(onSend).not.toHaveBeenCalled();
    expect(input.value).toBe('line one\nline two');
    await user.keyboard('{Enter}');
    expect(onSend).toHaveBeenCalledWith('line one\nline two');
  });

  it('refuses empty and whitespace-only messages', async () => {
    const { onSend, input, user } = setup();
    await user.click(input);
    await user.keyboard('{Enter}');
    await user.keyboard('   {Shift>}{Enter}{/Shift}  {Enter}');
    expect(onSend).not.toHaveBeenCalled();
    expect(screen.getByTestId('composer-send')).toBeDisabled();
  });

  it('does not send while an input method is composing (pinyin)', () => {
    const { onSend, input } = setup();
    fireEvent.change(input, { target: { value: 'nihao' } });
    fireEvent.keyDown(input, { key: 'Enter', isComposing: true, keyCode: 229 });
    expect(onSend).not.toHaveBeenCalled();
  });

  it('sends with the button', async () => {
    const { onSend, input, user } = setup();
    await user.type(input, '你好');
    await user.click(screen.getByTestId('composer-send'));
    expect(onSend).toHaveBeenCalledWith('你好');
  });

  it('shows a counter near the 16 KiB limit and refuses a longer text', () => {
    const { onSend, input } = setup();
    fireEvent.change(input, { target: { value: 'a'.repeat(15_000) } });
    expect(screen.getByRole('status')).toHaveTextContent(`15000 / ${TEXT_MAX_BYTES}`);
    // 6,000 Chinese characters are 18,000 bytes of UTF-8.
    fireEvent.change(input, { target: { value: '字'.repeat(6000) } });
    expect(screen.getByRole('status')).toHaveTextContent('too long');
    fireEvent.keyDown(input, { key: 'Enter' });
    expect(onSend).not.toHaveBeenCalled();
  });

  it('puts the text back when sending fails', async () => {
    const onSend = vi.fn().mockRejectedValue(new Error('You are offline.'));
    render(<Composer draftKey="fail" onSend={onSend} />);
    const input = screen.getByTestId('composer-input') as HTMLTextAreaElement;
    fireEvent.change(input, { target: { value: 'keep me' } });
    fireEvent.keyDown(input, { key: 'Enter' });
    expect(await screen.findByText('You are offline.')).toBeInTheDocument();
    expect(input.value).toBe('keep me');
  });
});

describe('attachments', () => {
  function withAttachments(filesAllowed: boolean) {
    const attachments = {
      filesAllowed,
      onPickFiles: vi.fn(),
      onPickImages: vi.fn(),
      onPasteImage: vi.fn(),
    };
    render(<Composer draftKey={`a${Math.random()}`} onSend={vi.fn()} attachments={attachments} />);
    return attachments;
  }

  it('picks files and images with the two buttons', async () => {
    const a = withAttachments(true);
    await userEvent.click(screen.getByTestId('composer-attach'));
    await userEvent.click(screen.getByTestId('composer-image'));
    expect(a.onPickFiles).toHaveBeenCalledOnce();
    expect(a.onPickImages).toHaveBeenCalledOnce();
  });

  it('offers no file button in the Square, and says why', () => {
    withAttachments(false);
    const attach = screen.getByTestId('composer-attach');
    expect(attach).toBeDisabled();
    expect(attach).toHaveAttribute('title', 'Files can only be sent in private chats');
    expect(screen.getByTestId('composer-image')).toBeEnabled();
  });

  it('sends a pasted picture as an image and leaves pasted text alone', () => {
    const a = withAttachments(true);
    const input = screen.getByTestId('composer-input');
    const png = new File([new Uint8Array([137, 80, 78, 71])], 'image.png', { type: 'image/png' });
    const clipboard = (items: { kind: string; type: string; getAsFile: () => File | null }[]) => ({
      items,
    });
    fireEvent.paste(input, {
      clipboardData: clipboard([{ kind: 'file', type: 'image/png', getAsFile: () => png }]),
    });
    expect(a.onPasteImage).toHaveBeenCalledWith(png);
    fireEvent.paste(input, {
      clipboardData: clipboard([{ kind: 'string', type: 'text/plain', getAsFile: () => null }]),
    });
    expect(a.onPasteImage).toHaveBeenCalledOnce();
  });
});
