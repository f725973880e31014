// What a command needs from the world, passed in so the unit tests can run every command in-process
// with a fake fetch, fixed stdin lines and a fixed clock (cli/syncctl.ts wires the real ones).
import { SyncClient } from "../client/index.js";
import { Output } from "./output.js";

export const DEFAULT_URL = "http://127.0.0.1:8787";

export interface Io {
  stdout(text: string): void;
  stderr(text: string): void;
  env: Readonly<Record<string, string | undefined>>;
  /** Standard input, one line at a time (for `-` arguments). */
  stdinLines(): AsyncIterable<string>;
  /** Epoch ms, for "expires in 29.8s" (and the bench's clock is performance.now, not this). */
  now(): number;
  fetch?: typeof fetch;
  /** The client's retry policy; the tests turn the backoff down. */
  retry?: { attempts?: number; baseMs?: number; maxMs?: number };
}

/** The global flags, as commander parsed them. */
export interface GlobalOptions {
  url?: string;
  token?: string;
  json?: boolean;
}

export class Context {
  #client: SyncClient | undefined;
  #options: GlobalOptions = {};

  constructor(
    readonly io: Io,
    readonly version: string,
  ) {}

  /** Called once the command line is parsed, before the command runs. */
  configure(options: GlobalOptions): void {
    this.#options = options;
  }

  get jsonRequested(): boolean {
    return this.#options.json === true;
  }

  get out(): Output {
    return new Output(this.io, this.jsonRequested);
  }

  /** The flag, else the environment, else the local server `npm start` runs. */
  get url(): string {
    return this.#options.url ?? nonEmpty(this.io.env.SYNC_URL) ?? DEFAULT_URL;
  }

  get client(): SyncClient {
    this.#client ??= new SyncClient({
      url: this.url,
      token: this.#options.token ?? nonEmpty(this.io.env.SYNC_TOKEN),
      fetch: this.io.fetch,
      retry: this.io.retry,
      userAgent: `syncctl/${this.version}`,
    });
    return this.#client;
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}
