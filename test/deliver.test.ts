import { describe, expect, test } from "bun:test";
import { sensitivePath } from "../src/deliver.ts";

describe("sensitivePath: agent MEDIA paths that must never be sent", () => {
  const home = "/Users/bot";
  const state = "/Users/bot/.openclaw";
  const rows: [string, string | undefined][] = [
    ["/Users/bot/.openclaw/state.db", "inside the gateway's state dir"],
    ["/Users/bot/.ssh/id_ed25519", "inside a hidden directory of the home folder"],
    ["/Users/bot/.aws/credentials", "inside a hidden directory of the home folder"],
    ["/Users/bot/Library/Messages/chat.db", "the Messages database folder"],
    ["/Users/bot/Library/Keychains/login.keychain-db", "inside /Users/bot/Library/Keychains"],
    ["/etc/passwd", "inside /etc"],
    ["/private/etc/master.passwd", "inside /private/etc"],
    ["/Users/bot/Library/Messages/Attachments/ab/IMG_1.jpg", undefined],
    ["/Users/bot/Pictures/cat.png", undefined],
    ["/tmp/agent-out/chart.png", undefined],
    ["/etcetera/file.png", undefined],
  ];
  test.each(rows)("%s", (path, want) => expect(sensitivePath(path, state, home)).toBe(want));
});
