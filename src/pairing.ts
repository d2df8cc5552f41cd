// DM pairing: short-lived codes for unknown senders, approved by the operator through the CLI.
// Storage is the Store's; the rules (alphabet, TTL, cap, case-insensitive approval) live here.
import { randomInt } from "node:crypto";
import type { Store } from "./store.ts";

/** Code alphabet: no 0/O or 1/I, so codes survive being read aloud or retyped. */
export const PAIRING_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/** A code is approvable for one hour after it was issued. */
export const PAIRING_TTL_MS = 3_600_000;
/** At most this many pending requests per account; further strangers get no code and no reply. */
export const PAIRING_MAX_PENDING = 3;
/** Length of a pairing code. */
export const PAIRING_CODE_LENGTH = 8;
// Collisions are astronomically rare (32^8 codes); the bound only guards against a broken `isTaken`.
const MAX_CODE_ATTEMPTS = 500;

/** Sent to a sender after `pairing approve --notify`. */
export const APPROVED_NOTICE = "You're approved. Send a message to start chatting.";

/** A pending request in the docs/SPEC.md §4.3 JSON shape. */
export interface PairingRequest {
  code: string;
  id: string;
  accountId: string;
  createdAt: string;
  lastSeenAt: string;
  meta: Record<string, string>;
}

/** An approved sender in the docs/SPEC.md §4.4 JSON shape. */
export interface ApprovedSender {
  accountId: string;
  id: string;
  approvedAt: string;
}

/** A random code from PAIRING_ALPHABET (CSPRNG), regenerated while `isTaken` says it is in use. */
export function generateCode(isTaken: (code: string) => boolean = () => false): string {
  for (let attempt = 0; attempt < MAX_CODE_ATTEMPTS; attempt++) {
    let code = "";
    for (let i = 0; i < PAIRING_CODE_LENGTH; i++) code += PAIRING_ALPHABET[randomInt(PAIRING_ALPHABET.length)];
    if (!isTaken(code)) return code;
  }
  throw new Error(`could not find an unused pairing code in ${MAX_CODE_ATTEMPTS} attempts`);
}

/** The form codes are stored in: operators may type them in any case, with stray spaces. */
export function normalizeCode(code: string): string {
  return code.trim().toUpperCase();
}

function pruneExpired(store: Store): void {
  store.deletePairingRequestsCreatedBefore(store.now() - PAIRING_TTL_MS);
}

/**
 * Issues (or re-finds) a sender's pairing code. `created` is true only for a new request, which is the only time
 * the sender should get a reply; at the cap a new sender gets `{code: "", created: false}`.
 */
export function requestPairing(
  store: Store,
  accountId: string,
  senderId: string,
  meta: Record<string, string>,
): { code: string; created: boolean } {
  pruneExpired(store);
  const now = store.now();
  const existing = store.getPairingRequest(accountId, senderId);
  if (existing) {
    store.touchPairingRequest(accountId, senderId, now);
    return { code: existing.code, created: false };
  }
  if (store.countPairingRequests(accountId) >= PAIRING_MAX_PENDING) return { code: "", created: false };
  const code = generateCode((c) => store.findPairingByCode(c) !== undefined);
  store.upsertPairingRequest({ accountId, senderId, code, createdAt: now, lastSeenAt: now, meta });
  return { code, created: true };
}

/** Pending (unexpired) requests, all accounts or one, oldest first. */
export function listRequests(store: Store, accountId?: string): PairingRequest[] {
  pruneExpired(store);
  return store.listPairingRequests(accountId).map((r) => ({
    code: r.code,
    id: r.senderId,
    accountId: r.accountId,
    createdAt: new Date(r.createdAt).toISOString(),
    lastSeenAt: new Date(r.lastSeenAt).toISOString(),
    meta: r.meta,
  }));
}

/**
 * Approves the sender holding `code` (any case). With `accountId`, only that account's requests match.
 * Returns who was approved, or undefined for an unknown, expired or other-account code.
 */
export function approveCode(
  store: Store,
  code: string,
  accountId?: string,
): { accountId: string; senderId: string } | undefined {
  pruneExpired(store);
  const req = store.findPairingByCode(normalizeCode(code));
  if (!req || (accountId !== undefined && req.accountId !== accountId)) return undefined;
  if (!store.approvePairingRequest(req.accountId, req.senderId)) return undefined;
  return { accountId: req.accountId, senderId: req.senderId };
}

/** Withdraws a sender's approval (and any pending request); true when there was something to remove. */
export function revokeSender(store: Store, accountId: string, senderId: string): boolean {
  const approved = store.removeApproved(accountId, senderId);
  const pending = store.deletePairingRequest(accountId, senderId);
  return approved || pending;
}

/** Sender ids approved through pairing for one account (the policy's extra allowFrom). */
export function approvedSenders(store: Store, accountId: string): string[] {
  return store.listApproved(accountId).map((r) => r.senderId);
}

/** Approved senders, all accounts or one, in approval order. */
export function listApproved(store: Store, accountId?: string): ApprovedSender[] {
  return store.listApproved(accountId).map((r) => ({
    accountId: r.accountId,
    id: r.senderId,
    approvedAt: new Date(r.approvedAt).toISOString(),
  }));
}

/** The one reply an unknown DM sender gets: their id, the code, and the exact approve command for the operator. */
export function pairingReply(senderId: string, code: string, accountId = "default"): string {
  const account = accountId === "default" ? "" : ` --account ${accountId}`;
  return [
    "This assistant only talks to people its owner has approved.",
    "",
    `Your iMessage sender id: ${senderId}`,
    "",
    `Pairing code: ${code}`,
    "",
    "To let you in, the owner runs:",
    `openclaw-imsg pairing approve imessage ${code}${account}`,
    "",
    "The code expires in 1 hour.",
  ].join("\n");
}

/**
 * A stranger's first DM: the pairing request and the reply to send, recorded together in one transaction (a crash
 * in between would leave a code nobody got). Returns the reply, or why there is none.
 */
export function pairingTurn(
  store: Store,
  accountId: string,
  key: string,
  senderId: string,
  chatId: number,
): { text: string; media: string[]; system: true } | "pairing already requested (no new reply)" | "pairing: too many pending requests (no reply)" {
  return store.transaction(() => {
    const { code, created } = requestPairing(store, accountId, senderId, { sender: senderId, chatId: String(chatId) });
    if (!created) return code ? "pairing already requested (no new reply)" : "pairing: too many pending requests (no reply)";
    const reply = { text: pairingReply(senderId, code, accountId), media: [], system: true as const };
    store.setInbound(accountId, key, { state: "replied", reply });
    return reply;
  });
}
