// Types for `env` and `exports` from "cloudflare:workers" / "cloudflare:test"
// (what `wrangler types` would generate, kept by hand while it is this small).
import type * as main from "./index";

declare global {
  namespace Cloudflare {
    interface GlobalProps {
      mainModule: typeof main;
    }
    interface Env extends main.Env {}
  }
}
