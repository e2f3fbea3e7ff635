/** What a call under test failed with: the DiginfraError, for tests to check its code and message. */
import { DiginfraError } from '../../src/errors.js';

/** The DiginfraError a promise rejects with; fails the test if it resolves or throws something else. */
export async function errorOf(p: Promise<unknown>): Promise<DiginfraError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof DiginfraError) return err;
    throw err;
  }
  throw new Error('expected an error');
}

/** The DiginfraError `fn` throws; fails the test if it returns or throws something else. */
export function errorThrownBy(fn: () => unknown): DiginfraError {
  try {
    fn();
  } catch (err) {
    if (err instanceof DiginfraError) return err;
    throw err;
  }
  throw new Error('expected an error');
}
