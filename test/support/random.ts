/** Seeded randomness for load tests (STYLE.md habit 10): the same seed, the same run. */

export { seededRandom } from '../../src/core/random.ts';
