// valibot's strictObject, worded for people: an unknown key names its closest known sibling (or where it belongs),
// and every unknown key of an object is reported at once, not only the first.
import * as v from "valibot";
import { closest } from "./suggest.ts";

// strictObject with messages that name the unknown key's closest known sibling. `elsewhere` maps keys
// that are valid one level up to a message saying so (e.g. retentionDays inside an account).
export function strict<E extends v.ObjectEntries>(entries: E, elsewhere: Record<string, string> = {}) {
  const keys = Object.keys(entries);
  const schema = v.strictObject(entries, (issue) => {
    if (issue.expected === "never") {
      const key = String(issue.input);
      if (Object.hasOwn(elsewhere, key)) return elsewhere[key]!;
      const s = closest(key, keys);
      if (s) return `unknown key (did you mean "${s}"?)`;
      // A long list would bury the message; the generated config reference has it.
      return keys.length <= 8 ? `unknown key (known keys: ${keys.join(", ")})` : "unknown key";
    }
    if (issue.received === "undefined" && issue.path?.length) return "is required";
    return `expected an object, got ${issue.received}`;
  });
  // valibot's strictObject stops at the first unknown key; a file with three typos should list all three at once.
  type Run = (dataset: { value: unknown }, config: v.Config<v.BaseIssue<unknown>>) => { value: unknown };
  const run = schema["~run"] as unknown as Run;
  const addIssue = v._addIssue as unknown as (context: unknown, label: string, dataset: unknown, config: unknown, other: unknown) => void;
  const reportAll: Run = (dataset, config) => {
    const input = dataset.value;
    const out = run.call(schema, dataset, config);
    if (typeof input !== "object" || input === null || config.abortEarly) return out;
    const unknown = Object.keys(input).filter((k) => !Object.hasOwn(entries, k));
    for (const key of unknown.slice(1)) {
      const path = [{ type: "object", origin: "key", input, key, value: (input as Record<string, unknown>)[key] }];
      addIssue(schema, "key", out, config, { input: key, expected: "never", path });
    }
    return out;
  };
  (schema as unknown as { "~run": Run })["~run"] = reportAll;
  return schema;
}
