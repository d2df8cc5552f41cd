// In-process fixtures for pipeline tests: a real Store in a temp state dir, an account bound to a simulator, and
// inbound messages journaled as the gateway would. Removed after each test of the calling file.
import { afterEach } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildConfig, type ImessageAccount, resolveAccount } from "../../src/config.ts";
import type { ImsgMessage } from "../../src/imsg.ts";
import { inboundKey, Store } from "../../src/store.ts";
import { createSim, type Sim } from "./sim.ts";

export function journalResources() {
  const stops: (() => unknown)[] = [];
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  });
  return {
    /** A state dir with an open Store. */
    store(opts: { now?: () => number } = {}): { store: Store; stateDir: string } {
      const stateDir = mkdtempSync(join(tmpdir(), "oc-state-"));
      const store = Store.open(stateDir, opts);
      stops.push(() => rmSync(stateDir, { recursive: true, force: true }));
      stops.push(() => store.close());
      return { store, stateDir };
    },
    sim(opts?: Parameters<typeof createSim>[0]): Sim {
      const s = createSim(opts);
      stops.push(() => s.cleanup());
      return s;
    },
    track(stop: () => unknown): void {
      stops.push(stop);
    },
  };
}

/** The default account bound to `cliPath`, with `imessage` merged over a minimal config. */
export function accountFor(cliPath: string, imessage: Record<string, unknown> = {}): ImessageAccount {
  const cfg = buildConfig({
    channels: { imessage: { cliPath, allowFrom: ["+15550001111"], ...imessage } },
    agents: { list: [{ id: "main", command: ["/bin/true"] }] },
  }, "test");
  return resolveAccount(cfg);
}

/** An inbound message as parseMessage would produce it. */
export function inbound(over: Partial<ImsgMessage> = {}): ImsgMessage {
  return {
    id: 10,
    chatId: 0,
    guid: "IN-10",
    sender: "+15550001111",
    isFromMe: false,
    text: "hi",
    createdAt: new Date().toISOString(),
    attachments: [],
    chatIdentifier: "+15550001111",
    chatGuid: "iMessage;-;+15550001111",
    chatName: "",
    participants: [],
    isGroup: false,
    ...over,
  } as ImsgMessage;
}

/** Journals `msg` as the gateway's ingest does; returns its inbound key. */
export function journal(store: Store, msg: ImsgMessage, accountId = "default"): string {
  store.journalInbound(accountId, {
    guid: msg.guid,
    rowid: msg.id,
    chatId: msg.chatId,
    sender: msg.sender,
    isFromMe: msg.isFromMe,
    createdAt: Date.parse(msg.createdAt),
    message: msg,
  });
  return inboundKey(msg.guid, msg.id);
}
