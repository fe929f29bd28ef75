import type { Message, MessageUpdate } from "@stackpro/messaging-client";

/** `list` (ascending `seq`, one entry per `seq`) with `message` in its place; a `seq` already there is replaced. */
export function insertBySeq(list: readonly Message[], message: Message): Message[] {
  const last = list[list.length - 1];
  if (!last || last.seq < message.seq) return [...list, message];
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((list[mid] as Message).seq < message.seq) lo = mid + 1;
    else hi = mid;
  }
  const next = [...list];
  if (next[lo]?.seq === message.seq) next[lo] = message;
  else next.splice(lo, 0, message);
  return next;
}

/** `message` changed by `update` (the same object when the update is not about it). */
export function applyUpdate(message: Message, update: MessageUpdate): Message {
  if (message.seq !== update.seq) return message;
  switch (update.kind) {
    case "edited":
      // An edit carries the message as stored; counts that moved since stay ours.
      return { ...message, ...update.message, reactions: update.message.reactions ?? message.reactions, threadCount: Math.max(message.threadCount, update.message.threadCount ?? 0) };
    case "deleted":
      return { ...message, deleted: true, content: { ...message.content, text: "", attachments: [] }, reactions: {} };
    case "reactions":
      return { ...message, reactions: update.reactions };
    case "thread":
      return { ...message, threadCount: update.threadCount };
  }
}

/** `list` with the message of `seq` changed by `change` (the same list when there is none). */
export function updateBySeq(list: readonly Message[], seq: number, change: (m: Message) => Message): readonly Message[] {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((list[mid] as Message).seq < seq) lo = mid + 1;
    else hi = mid;
  }
  const found = list[lo];
  if (!found || found.seq !== seq) return list;
  const changed = change(found);
  if (changed === found) return list;
  const next = [...list];
  next[lo] = changed;
  return next;
}

/** `users` with `user` in it (true) or out of it (false), for a reaction toggled here. */
export function toggleReaction(reactions: Record<string, string[]>, emoji: string, user: string, on: boolean): Record<string, string[]> {
  const users = new Set(reactions[emoji] ?? []);
  if (on) users.add(user);
  else users.delete(user);
  const next = { ...reactions };
  if (users.size > 0) next[emoji] = [...users];
  else delete next[emoji];
  return next;
}
