/**
 * product.register in the catalogue every authority shares: the row records its registrant,
 * a second registration of a model is refused naming the product that holds it and who
 * registered it, and a model the accelerator catalogue lists takes its datasheet figures only.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../../test/database.ts';
import { expectOk, worldPerFile, type World } from '../../../test/world.ts';
import { presentProduct } from '../../server/presenters.ts';
import type { ProductRow } from '../rows.ts';
import { Ledger, type Answer } from '../ledger.ts';
import { systemActor, type Actor } from '../permissions.ts';
import type { CommandRequest } from '../schemas.ts';
import { inTransaction } from '../../store/pool.ts';
import { testSealingKey } from '../../../test/support/sealing-key.ts';

let world: World;
let database: TestDatabase;
worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

type Registration = CommandRequest<'product.register'>;
const register = (input: Registration, actor: Actor, key?: string) => world.ledger.submit('product.register', input, actor, key);
const refusal = (answer: Answer) => (answer.ok ? 'accepted' : { code: answer.error.code, rule: answer.error.rule, message: answer.error.message, details: answer.error.details });
const productRow = async (id: string) => (await database.pool.query<ProductRow>('SELECT * FROM products WHERE id = $1', [id])).rows[0]!;
const productsNamed = async (model: string) => (await database.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM products WHERE model = $1', [model])).rows[0]!.n;

/** Not in the accelerator catalogue: the finding's squat, figures that classify it outside 3A090. */
const squat: Registration = {
  model: 'B300 SXM', vendor: 'NVIDIA',
  parameters: { denseTops: 10, bitLength: 8, logicDieAreaMm2: 1_600, dramBandwidthGbS: 8_000, designedForDatacenter: true },
};
const real: Registration = { ...squat, parameters: { ...squat.parameters, denseTops: 4_500 } };

/** H100 SXM as accelerators.csv lists it (line 3). */
const h100: Registration = {
  model: 'H100 SXM', vendor: 'NVIDIA',
  parameters: { denseTops: 1_979, bitLength: 8, logicDieAreaMm2: 814, dramBandwidthGbS: 3_350, memoryGb: 80, designedForDatacenter: true },
};
const h100With = (parameters: Partial<Registration['parameters']>, rest: Partial<Registration> = {}): Registration => ({ ...h100, ...rest, parameters: { ...h100.parameters, ...parameters } });

describe('product.register: who registered it, and one product per model', () => {
  it('records the registering authority, shown as registeredBy', async () => {
    const { actors } = world;
    const made = expectOk(await register(squat, actors.mofcom));
    const row = await productRow(String(made.productId));
    expect(row.registered_by).toBe(actors.mofcom.orgId);
    expect(presentProduct(row)).toMatchObject({ id: made.productId, model: 'B300 SXM', registeredBy: actors.mofcom.orgId });
    // The world's H200 SXM, registered by BIS.
    expect((await productRow(world.productId)).registered_by).toBe(actors.bis.orgId);
  });

  it('refuses a second registration of the model as a conflict naming the product and its registrant', async () => {
    const { actors } = world;
    const held = (await database.pool.query<{ id: string }>("SELECT id FROM products WHERE model = 'B300 SXM'")).rows[0]!.id;
    expect(refusal(await register(real, actors.bis, 'bis-b300'))).toEqual({
      code: 'conflict',
      rule: 'product-model',
      message: `model "B300 SXM" is already registered, as product ${held} by ${actors.mofcom.orgId}; a model is registered once, and every licence names that product`,
      details: { productId: held, registeredBy: actors.mofcom.orgId },
    });
    expect(await productsNamed('B300 SXM')).toBe(1);
    // The refusal is remembered under its key, as the handler's refusals are.
    expect(refusal(await register(real, actors.bis, 'bis-b300'))).toMatchObject({ rule: 'product-model' });
  });

  it('refuses the second of two registrations of one model that come together', async () => {
    const { actors } = world;
    const model: Registration = { ...squat, model: 'Twice Accelerator' };
    const answers = await Promise.all([register(model, actors.bis), register(model, actors.mofcom)]);
    expect(answers.filter((answer) => answer.ok)).toHaveLength(1);
    expect(answers.map((answer) => (answer.ok ? 'accepted' : `${answer.error.code} (${answer.error.rule})`)).sort()).toEqual(['accepted', 'conflict (product-model)']);
    expect(await productsNamed('Twice Accelerator')).toBe(1);
  });

  it('refuses a duplicate from the rows a batch takes from the row cache too', async () => {
    // Another writer moves the head: this ledger's next batch goes the classic way and fills
    // its cache; the one after finds the registrant's organisation cached, and would take its
    // rows from there, without the product that holds the model (ledger/row-cache.ts).
    const other = await Ledger.open({ logSealingKey: testSealingKey, pool: database.pool, clock: world.clock });
    try {
      expectOk(await other.submit('organisation.register', { name: 'Another Writer Ltd', country: 'GB', roles: ['auditor'], identifiers: {} }, systemActor));
    } finally {
      await other.close();
    }
    const { actors } = world;
    const model: Registration = { ...squat, model: 'Cached Accelerator' };
    expectOk(await register(model, actors.mofcom));
    expect(refusal(await register(model, actors.mofcom))).toMatchObject({ code: 'conflict', rule: 'product-model' });
    expect(await productsNamed('Cached Accelerator')).toBe(1);
  });

  it('names the registrant of a product registered before registrants were recorded by its event', async () => {
    const { actors } = world;
    const made = expectOk(await register({ ...squat, model: 'Old Accelerator' }, actors.bis));
    // As migration 036 leaves a product registered before it (written by hand around 063's
    // trigger, which keeps a product as it was registered).
    await inTransaction(database.pool, 'BEGIN', async (client) => {
      await client.query("SET LOCAL session_replication_role = 'replica'");
      await client.query('UPDATE products SET registered_by = NULL WHERE id = $1', [made.productId]);
    });
    const row = await productRow(String(made.productId));
    expect(presentProduct(row).registeredBy).toBeNull();
    expect(refusal(await register({ ...squat, model: 'Old Accelerator' }, actors.mofcom))).toMatchObject({
      rule: 'product-model',
      message: expect.stringContaining(`as product ${made.productId} by the actor of event ${row.created_seq} (registered before registrants were recorded)`),
      details: { productId: made.productId, registeredBy: null },
    });
  });

  it('refuses the operator, whose organisation is no authority', async () => {
    expect(refusal(await register({ ...squat, model: 'Operator Accelerator' }, systemActor))).toMatchObject({ code: 'forbidden', rule: 'product-registrant' });
    expect(await productsNamed('Operator Accelerator')).toBe(0);
  });
});

describe('product.register of a model the accelerator catalogue lists', () => {
  it('refuses figures other than the datasheet\'s, naming the model and the first that differs', async () => {
    const { actors } = world;
    const cases: Array<[Registration, string, string]> = [
      [h100With({}, { vendor: 'Nvidia' }), 'vendor', 'vendor is not the catalogue\'s "NVIDIA"'],
      [h100With({ denseTops: 10 }), 'denseTops', 'denseTops × bitLength is 10 × 8, TPP 80; the datasheet gives 1979 × 8, TPP 15832'],
      [h100With({ denseTops: undefined, bitLength: undefined, denseRates: [{ precision: 'FP16', denseTops: 100, bitLength: 16 }] }), 'denseRates', 'denseRates give TPP 1600 at most; the datasheet gives 1979 × 8, TPP 15832'],
      [h100With({ logicDieAreaMm2: 2_000 }), 'logicDieAreaMm2', 'logicDieAreaMm2 is 2000; the datasheet gives 814'],
      [h100With({ dramBandwidthGbS: 3_000, logicDieAreaMm2: 2_000 }), 'logicDieAreaMm2', 'logicDieAreaMm2 is 2000; the datasheet gives 814'],
      [h100With({ dramBandwidthGbS: 3_000 }), 'dramBandwidthGbS', 'dramBandwidthGbS is 3000; the datasheet gives 3350'],
      [h100With({ memoryGb: 94 }), 'memoryGb', 'memoryGb is 94; the datasheet gives 80'],
      [h100With({ designedForDatacenter: false }), 'designedForDatacenter', 'designedForDatacenter is false; the datasheet gives true'],
    ];
    for (const [input, field, statement] of cases) {
      expect(refusal(await register(input, actors.mofcom))).toEqual({
        code: 'invalid_input',
        rule: 'product-catalogue',
        message: `model "H100 SXM" is in the accelerator catalogue (line 3) and is registered with its datasheet figures: ${statement}`,
        details: { model: 'H100 SXM', line: 3, field },
      });
    }
    expect(await productsNamed('H100 SXM')).toBe(0);
  });

  it('takes a TPP above the datasheet\'s by its rounding alone, with the datasheet\'s rate given, and refuses any other', async () => {
    const { actors } = world;
    // H200 NVL's datasheet rounds each precision's rate: FP16 835.5 × 16 = 13,368 against the
    // catalogue's FP8 1,670.5 × 8 = 13,364. Given all its rates, it is taken at the highest.
    const nvl = expectOk(await register({
      model: 'H200 NVL', vendor: 'NVIDIA',
      parameters: { denseRates: [{ precision: 'FP8', denseTops: 1_670.5, bitLength: 8 }, { precision: 'FP16', denseTops: 835.5, bitLength: 16 }], logicDieAreaMm2: 814, dramBandwidthGbS: 4_800, memoryGb: 141, designedForDatacenter: true },
    }, actors.bis));
    expect(nvl).toMatchObject({ eccn: '3A090.a', tpp: 13_368 });
    // Above it by more than rounding, or without the datasheet's own rate among the rates: refused,
    // whether or not the figure would decide anything else (H100 at 20,992 stays 3A090.a.1 and
    // case-by-case for China, but its record would not be its datasheet's).
    const above = "above the datasheet's by more than its rounding (a higher TPP is taken only with the datasheet's rate among the rates given, and by at most 0.1% more)";
    const h100Rates = (denseRates: Registration['parameters']['denseRates']) => h100With({ denseTops: undefined, bitLength: undefined, denseRates });
    const cases: Array<[Registration, string]> = [
      [h100With({ denseTops: 2_700 }), `denseTops × bitLength is 2700 × 8, TPP 21600, ${above}`],
      [h100Rates([{ precision: 'FP16', denseTops: 1_312, bitLength: 16 }]), `denseRates give TPP 20992 at most, ${above}`],
      [h100Rates([{ precision: 'FP8', denseTops: 1_979, bitLength: 8 }, { precision: 'FP16', denseTops: 1_312, bitLength: 16 }]), `denseRates give TPP 20992 at most, ${above}`],
      [h100Rates([{ precision: 'FP16', denseTops: 989.6, bitLength: 16 }]), `denseRates give TPP 15833.6 at most, ${above}`],
    ];
    for (const [input, statement] of cases) {
      expect(refusal(await register(input, actors.mofcom))).toMatchObject({
        code: 'invalid_input', rule: 'product-catalogue',
        message: `model "H100 SXM" is in the accelerator catalogue (line 3) and is registered with its datasheet figures: ${statement}; the datasheet gives 1979 × 8, TPP 15832`,
      });
    }
  });

  it('refuses a model that reads as a listed one, naming the listed model', async () => {
    for (const model of ['h100 sxm', 'H100-SXM', 'Ｈ１００ ＳＸＭ', 'H100SXM']) {
      expect(refusal(await register({ ...squat, model }, world.actors.mofcom))).toMatchObject({
        code: 'invalid_input',
        rule: 'product-catalogue',
        message: expect.stringContaining(`reads as "H100 SXM" of the accelerator catalogue (line 3); register it as "H100 SXM", with its datasheet figures`),
      });
    }
  });

  it('registers it with the datasheet\'s figures, in either form of rate, memory left out or not', async () => {
    const { actors } = world;
    // All rates: FP16 989.5 × 16 gives the datasheet's TPP as FP8 1979 × 8 does.
    const rates = { denseTops: undefined, bitLength: undefined, denseRates: [{ precision: 'FP16', denseTops: 989.5, bitLength: 16 }, { precision: 'FP8', denseTops: 1_979, bitLength: 8 }] };
    const made = expectOk(await register(h100With({ ...rates, memoryGb: undefined }), actors.bis));
    expect(made).toMatchObject({ eccn: '3A090.a', tpp: 15_832 });
    // A100 SXM: INT8 624 × 8 gives the 4,992 of the datasheet's FP16 312 × 16.
    expectOk(await register({ model: 'A100 SXM', vendor: 'NVIDIA', parameters: { denseTops: 624, bitLength: 8, logicDieAreaMm2: 826, dramBandwidthGbS: 2_039, memoryGb: 80, designedForDatacenter: true } }, actors.bis));
  });
});
