/**
 * The demo scenario, as data (the seed's case): a US export licence and a Chinese import licence
 * for 400,000 H200 units, allocated to three large internet companies, their data centres,
 * shipments in every state with serial manifests, and deployments.
 *
 * Every company, person and address here is fictional except the two authorities, which are
 * the real issuers of such licences. The credit codes are made up but as well formed as issued
 * ones: position 17 is the GB 11714 check character of the organisation code in positions 9-17
 * (scenario.test.ts checks it), and makeUscc appends GB 32100's in position 18. Everything is
 * loaded with demo: true.
 */
import { createHash } from 'node:crypto';
import { makeUscc } from '../core/uscc.ts';
import type { Role } from '../ledger/rows.ts';
import type { ShipmentStatus } from '../ledger/rows.ts';

export type OrgKey = 'bis' | 'mofcom' | 'exporter' | 'importer' | 'yunchuan' | 'xinglan' | 'penghai' | 'auditor';
export type CompanyKey = 'yunchuan' | 'xinglan' | 'penghai';

export interface DemoOrganisation {
  key: OrgKey;
  name: string;
  nameRomanised?: string;
  country: string;
  roles: Array<'authority' | 'exporter' | 'recipient' | 'auditor'>;
  uscc?: string;
  address: string;
  /** Its part in the demo, in a few words, where its token is printed. */
  part: string;
  /** The role of the token the loader makes for it (and prints). */
  tokenRole: Role;
}

export const organisations: readonly DemoOrganisation[] = [
  { key: 'bis', name: 'Bureau of Industry and Security', nameRomanised: 'U.S. Department of Commerce, Bureau of Industry and Security (BIS)', country: 'US', roles: ['authority'], address: '1401 Constitution Ave NW, Washington, DC 20230', part: 'US export authority (BIS)', tokenRole: 'authority_admin' },
  { key: 'mofcom', name: '中华人民共和国商务部', nameRomanised: "Ministry of Commerce of the People's Republic of China (MOFCOM)", country: 'CN', roles: ['authority'], uscc: makeUscc('11100000MB0000000'), address: '北京市东城区东长安街2号', part: 'China import authority (MOFCOM)', tokenRole: 'authority_admin' },
  { key: 'exporter', name: 'Example Accelerators Inc.', country: 'US', roles: ['exporter'], address: '100 Example Way, Santa Clara, CA 95050 (fictional)', part: 'US exporter', tokenRole: 'exporter' },
  { key: 'importer', name: '华瀚科技进出口有限公司', nameRomanised: 'Huahan Technology Import & Export Co., Ltd.', country: 'CN', roles: ['recipient'], uscc: makeUscc('91110105MA01HH007'), address: '北京市朝阳区示例路8号 (fictional)', part: 'importer (holds the import licence)', tokenRole: 'recipient' },
  { key: 'yunchuan', name: '云川网络科技有限公司', nameRomanised: 'Yunchuan Network Technology Co., Ltd.', country: 'CN', roles: ['recipient'], uscc: makeUscc('91110108MA01YC006'), address: '北京市海淀区示例大街1号 (fictional)', part: 'end user (allocations, sites)', tokenRole: 'recipient' },
  { key: 'xinglan', name: '星澜数字科技有限公司', nameRomanised: 'Xinglan Digital Technology Co., Ltd.', country: 'CN', roles: ['recipient'], uscc: makeUscc('91330106MA2KXL006'), address: '浙江省杭州市西湖区示例路2号 (fictional)', part: 'end user (allocations, sites)', tokenRole: 'recipient' },
  { key: 'penghai', name: '鹏海互联科技有限公司', nameRomanised: 'Penghai Interactive Technology Co., Ltd.', country: 'CN', roles: ['recipient'], uscc: makeUscc('91440305MA5GPH003'), address: '广东省深圳市南山区示例道3号 (fictional)', part: 'end user (allocations, sites)', tokenRole: 'recipient' },
  { key: 'auditor', name: 'Example Assurance LLP', country: 'GB', roles: ['auditor'], address: '1 Example Square, London (fictional)', part: 'auditor (reads everything)', tokenRole: 'auditor' },
];

/**
 * The organisation whose admin token `serve --demo` prints first, on every start. Both
 * authorities' demo tokens are admins, so each can make tokens in its own jurisdiction through
 * the API; the operator (`chipledger token create`) can make any.
 */
export const administrator: OrgKey = 'mofcom';

export const companies: readonly CompanyKey[] = ['yunchuan', 'xinglan', 'penghai'];

/** The seed's chip; the rest of the catalogue is registered too. */
export const licensedModel = 'H200 SXM';
export const licensedUnits = 400_000;
/** Allocations on both licences: 160k + 140k + 100k = 400k. */
export const allocationUnits: Record<CompanyKey, number> = { yunchuan: 160_000, xinglan: 140_000, penghai: 100_000 };
/** Licence validity around the load time: issued a while ago, valid for about a year. */
export const licenceStartedDaysAgo = 45;
export const licenceValidDays = 365;
export const maxUnitsPerShipment = 5_000;

export const exportConditions = [
  { id: 'max-units-per-shipment', kind: 'max_units_per_shipment' as const, value: maxUnitsPerShipment, text: `No single shipment may exceed ${maxUnitsPerShipment.toLocaleString('en-US')} units.` },
  { id: 'end-user-kyc', kind: 'end_user_kyc_required' as const, text: 'Each end user must have passed a know-your-customer review before any shipment to it.' },
  { id: 'no-military-end-use', kind: 'obligation' as const, text: 'No military end use or military end user (EAR 744.21); no diversion to such uses or users.' },
  { id: 'china-volume-cap', kind: 'obligation' as const, text: "Units shipped to China under this licence may not exceed 50% of the exporter's shipments of the same product to US customers in the same period." },
  { id: 'deployment-reporting', kind: 'obligation' as const, text: 'End users report the data-centre site of every unit deployed, and every move, decommissioning or loss.' },
];
export const exportRiders = [
  'Reviewed case by case under the policy for China in force since January 2026.',
  'Records of every transaction under this licence are kept for five years (EAR part 762).',
];
export const importConditions = [
  { id: 'max-units-per-shipment', kind: 'max_units_per_shipment' as const, value: maxUnitsPerShipment, text: `No single shipment may exceed ${maxUnitsPerShipment.toLocaleString('en-US')} units.` },
  { id: 'domestic-deployment', kind: 'obligation' as const, text: 'Units are deployed only in data centres in the PRC that are registered with the ledger.' },
  { id: 'domestic-pairing', kind: 'obligation' as const, text: 'Each end user continues its procurement of domestic accelerators as declared in its application.' },
];
export const importRiders = [
  'Initial tranche for three internet companies; further applications will be considered as policy is calibrated.',
];

export interface DemoSite {
  key: string;
  company: CompanyKey;
  name: string;
  province: string;
  city: string;
  latitude: number;
  longitude: number;
  capacityUnits: number;
}

export const sites: readonly DemoSite[] = [
  { key: 'ulanqab', company: 'yunchuan', name: '云川乌兰察布数据中心 (Yunchuan Ulanqab Data Centre)', province: 'Inner Mongolia (内蒙古自治区)', city: 'Ulanqab (乌兰察布)', latitude: 41.0347, longitude: 113.1332, capacityUnits: 200_000 },
  { key: 'zhangjiakou', company: 'yunchuan', name: '云川张家口数据中心 (Yunchuan Zhangjiakou Data Centre)', province: 'Hebei (河北省)', city: 'Zhangjiakou (张家口)', latitude: 40.7676, longitude: 114.8863, capacityUnits: 120_000 },
  { key: 'guian', company: 'xinglan', name: "星澜贵安数据中心 (Xinglan Gui'an Data Centre)", province: 'Guizhou (贵州省)', city: "Gui'an New Area (贵安新区)", latitude: 26.3890, longitude: 106.3460, capacityUnits: 150_000 },
  { key: 'wuhu', company: 'xinglan', name: '星澜芜湖数据中心 (Xinglan Wuhu Data Centre)', province: 'Anhui (安徽省)', city: 'Wuhu (芜湖)', latitude: 31.3526, longitude: 118.4330, capacityUnits: 80_000 },
  { key: 'qingyang', company: 'penghai', name: '鹏海庆阳数据中心 (Penghai Qingyang Data Centre)', province: 'Gansu (甘肃省)', city: 'Qingyang (庆阳)', latitude: 35.7091, longitude: 107.6432, capacityUnits: 100_000 },
];

export interface DemoShipment {
  reference: string;
  company: CompanyKey;
  units: number;
  /** Serials listed when booking; the rest (if any) are attached afterwards, up to `attached`. */
  listedAtBooking: number;
  attached: number;
  /** Where the shipment ends up. */
  status: ShipmentStatus;
  /** Delivered units reported at sites, in manifest order. */
  deployments?: Array<{ site: string; count: number }>;
}

export const shipments: readonly DemoShipment[] = [
  { reference: 'EA-H200-0001', company: 'yunchuan', units: 600, listedAtBooking: 600, attached: 600, status: 'delivered', deployments: [{ site: 'ulanqab', count: 600 }] },
  { reference: 'EA-H200-0002', company: 'yunchuan', units: 400, listedAtBooking: 400, attached: 400, status: 'delivered', deployments: [{ site: 'zhangjiakou', count: 400 }] },
  { reference: 'EA-H200-0003', company: 'xinglan', units: 500, listedAtBooking: 500, attached: 500, status: 'delivered', deployments: [{ site: 'guian', count: 300 }, { site: 'wuhu', count: 200 }] },
  { reference: 'EA-H200-0004', company: 'penghai', units: 300, listedAtBooking: 300, attached: 300, status: 'delivered', deployments: [{ site: 'qingyang', count: 250 }] },
  { reference: 'EA-H200-0005', company: 'xinglan', units: 400, listedAtBooking: 400, attached: 400, status: 'cleared' },
  { reference: 'EA-H200-0006', company: 'penghai', units: 300, listedAtBooking: 300, attached: 300, status: 'shipped' },
  { reference: 'EA-H200-0007', company: 'yunchuan', units: 500, listedAtBooking: 500, attached: 500, status: 'booked' },
  { reference: 'EA-H200-0008', company: 'xinglan', units: 200, listedAtBooking: 0, attached: 120, status: 'booked' },
  { reference: 'EA-H200-0009', company: 'penghai', units: 250, listedAtBooking: 250, attached: 250, status: 'cancelled' },
  { reference: 'EA-H200-0010', company: 'yunchuan', units: 150, listedAtBooking: 150, attached: 150, status: 'expired' },
  { reference: 'EA-H200-0011', company: 'xinglan', units: 120, listedAtBooking: 120, attached: 120, status: 'returned' },
];

/** Booked shipments may wait this long; the one that expires gets a deadline of a moment. */
export const bookingDeadlineDays = 60;
export const expiringDeadlineMs = 2_000;

/** A delivered unit that failed burn-in is decommissioned; one unit in transit is reported lost. */
export const decommissioned = { shipment: 'EA-H200-0004', index: 299, reason: 'Failed burn-in before deployment; returned to the vendor for destruction.' };
/** The shipment turned back at the border: recorded by the import licence's authority. */
export const returnReason = 'Entry refused at Tianjin Xingang: the declared value on the commercial invoice did not match the goods; returned to the exporter.';
export const lost = { shipment: 'EA-H200-0006', index: 7, reason: 'Carton missing at the Shanghai Pudong bonded warehouse; reported to customs.' };

/** 13-digit board serials, unique per shipment and position. */
export function demoSerial(shipmentIndex: number, position: number): string {
  return `1654${String(shipmentIndex + 1).padStart(2, '0')}${String(position).padStart(7, '0')}`;
}

/** A stable, well-formed GPU UUID for a demo serial. */
export function demoGpuUuid(serial: string): string {
  const hex = createHash('sha256').update(`chipledger-demo:${serial}`).digest('hex');
  return `GPU-${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

export const demoStatuses: readonly ShipmentStatus[] = ['booked', 'shipped', 'cleared', 'delivered', 'cancelled', 'expired', 'returned'];
