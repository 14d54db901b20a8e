/**
 * The send guards as a plain count, for model tests: every send granted, given back or refused is
 * kept in plain lists and counted whole, each decision from scratch. A shard (or a process under
 * its lease) must decide every send as this does.
 */
import { givenBackPerNumber } from '../../workflows/send-guard-messages';

/** A send as the model sees it: its keys. */
export interface ModelSend {
  ip?: string;
  device?: string;
  block: string | number;
  number: string;
}

/** The caps the model applies (burst: the budget within one period longer than the run). */
export interface ModelCaps {
  burst: number;
  ip: number;
  device: number;
  blockNumbers: number;
}

/** Every answer a model run should meet at least once, so that every guard had its say. */
export const everyGuardAnswer = [
  'country_budget_exhausted',
  'device_rate_limited',
  'granted',
  'ip_rate_limited',
  'number_block_velocity',
  'premature_retry',
  'too_many_attempts',
];

/** A deterministic pseudo-random pick in [0, n): an LCG's high bits (its low bits repeat). */
export function picker(seed: number): (n: number) => number {
  let state = seed;
  return (n) => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return Math.floor((state / 2 ** 31) * n);
  };
}

export function plainGuardCount(caps: ModelCaps) {
  const granted: ModelSend[] = [];
  /** The numbers whose sends were given back, once per give-back, and the refusal each met. */
  const givenBack: { number: string; type: string }[] = [];
  /** Numbers inside a cooldown a given-back refusal told (longer than the run). */
  const coolingDown = new Set<string>();
  return {
    granted,
    /** The answer the guards owe `send`. */
    expected(send: ModelSend): string {
      if (coolingDown.has(send.number)) return 'premature_retry';
      const refused = givenBack.filter((g) => g.number === send.number);
      if (refused.length >= givenBackPerNumber) return refused.at(-1)!.type;
      if (granted.length >= caps.burst) return 'country_budget_exhausted';
      const numbers = new Set(granted.filter((g) => g.block === send.block).map((g) => g.number));
      if (!numbers.has(send.number) && numbers.size >= caps.blockNumbers) return 'number_block_velocity';
      if (send.ip && granted.filter((g) => g.ip === send.ip).length >= caps.ip) return 'ip_rate_limited';
      if (send.device && granted.filter((g) => g.device === send.device).length >= caps.device)
        return 'device_rate_limited';
      return 'granted';
    },
    /** A granted send its window let go out: counted. */
    sent(send: ModelSend): void {
      granted.push(send);
    },
    /** A granted send its window refused (`type`), given back: the number meets it again for a cooldown. */
    givenBack(send: ModelSend, type: string, { cooldown }: { cooldown: boolean }): void {
      givenBack.push({ number: send.number, type });
      if (cooldown) coolingDown.add(send.number);
    },
  };
}
