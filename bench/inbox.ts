/** The sandbox's inbox, as the benchmarks read a sent code from it. */

/** The latest code the sandbox at `sandboxUrl` sent to `to`; throws when it sent none. */
export async function latestCode(sandboxUrl: string, to: string): Promise<string> {
  const response = await fetch(`${sandboxUrl}/sandbox/messages?to=${encodeURIComponent(to)}`);
  const code = ((await response.json()) as { messages: { code: string | null }[] }).messages[0]?.code;
  if (!code) throw new Error(`the sandbox sent no code to ${to}`);
  return code;
}
