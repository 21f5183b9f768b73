/**
 * The ledger's load of products by the reading of their model (store/batch-state.ts
 * productsByModelReadingSql, over migration 050's products_model_reading): a registration in
 * a later batch that reads as a registered product finds it, and is refused naming it (rule
 * product-model) without failing its batch (s21 identity review, finding 2).
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { inRolledBack } from '../../test/support/rolled-back.ts';
import { expectOk, worldPerFile, type World } from '../../test/world.ts';
import type { Answer } from '../ledger/ledger.ts';
import { emptyKeys } from './batch-keys.ts';
import { loadBatchState, productsByModelReadingSql } from './batch-state.ts';

let database: TestDatabase;
let world: World;

worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

const refusal = (answer: Answer) => (answer.ok ? 'accepted' : { code: answer.error.code, rule: answer.error.rule, message: answer.error.message, details: answer.error.details });
const parameters = { denseTops: 100, bitLength: 8, logicDieAreaMm2: 814, dramBandwidthGbS: 4_800, memoryGb: 141, designedForDatacenter: true };
const productsReading = async (reading: string) => (await database.pool.query<{ id: string }>('SELECT id FROM products WHERE product_model_reading(model) = $1 ORDER BY created_seq', [reading])).rows.map((row) => row.id);
const registerProduct = (model: string, vendor: string) => world.ledger.submit('product.register', { model, vendor, parameters }, world.actors.bis);

describe('product.register in a later batch', () => {
  it('refuses one in a later batch too, naming the product, without failing the batch', async () => {
    const first = String(expectOk(await registerProduct('MI355X', 'AMD')).productId);
    const { stats } = world.ledger.sequencer;
    const failedBefore = stats.failedBatches;
    for (const model of ['mi355x', 'MI-355X', 'MI355X\u3000', 'ＭＩ３５５Ｘ']) {
      expect(refusal(await registerProduct(model, 'AMD')), model).toMatchObject({ code: 'conflict', rule: 'product-model', details: { productId: first } });
    }
    expect(stats.failedBatches - failedBefore).toBe(0);
    expect(await productsReading('mi355x')).toEqual([first]);
  });
});

describe('finding products by the reading of their model', () => {
  it('loads the product a model reads as, once, beside those named by id', async () => {
    const keys = emptyKeys();
    keys.products.add(world.productId);
    for (const model of ['h200-sxm', 'H200 SXM', 'Ｈ２００\u00a0sxm', 'Not Registered']) keys.productModels.add(model);
    const client = await database.pool.connect();
    try {
      expect((await loadBatchState(client, keys)).products.map((row) => row.id)).toEqual([world.productId]);
    } finally {
      client.release();
    }
  });

  it('reads products_model_reading for the trigger’s look-up and the load, at 5,000 products, in their cached plans', async () => {
    const plans = await inRolledBack(database.pool, async (client) => {
      await client.query(`INSERT INTO products (id, model, vendor, parameters, eccn, created_seq)
        SELECT 'PRD-G' || n, 'Model G' || n, vendor, parameters, eccn, 900000 + n FROM products, generate_series(1, 5000) AS n WHERE id = $1`, [world.productId]);
      await client.query('ANALYZE products');
      await client.query('SET LOCAL plan_cache_mode = force_generic_plan');
      await client.query(`PREPARE reading_holder(text, text) AS SELECT (array_agg(p.id ORDER BY p.created_seq, p.id))[1] FROM products p
        WHERE product_model_reading(p.model) = product_model_reading($1) AND p.id <> $2`);
      await client.query(`PREPARE reading_load(text[]) AS ${productsByModelReadingSql}`);
      const plan = async (sql: string) => (await client.query(`EXPLAIN ${sql}`)).rows.map((row) => row['QUERY PLAN']).join('\n');
      try {
        return [await plan(`EXECUTE reading_holder('model-g17', 'PRD-X')`), await plan(`EXECUTE reading_load('{model g17}')`)];
      } finally {
        await client.query('DEALLOCATE reading_holder; DEALLOCATE reading_load');
      }
    });
    for (const plan of plans) expect(plan).toMatch(/Index Scan using products_model_reading|Bitmap Index Scan on products_model_reading/);
  });
});
