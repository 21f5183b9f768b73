/** Every command kind and the handler that runs it. */
import type { Handler } from '../handler.ts';
import type { CommandKind } from '../schemas.ts';
import { allocationCreate, allocationResize } from './allocations.ts';
import { licenceAmend, licenceCreate, licenceIssue, licenceReinstate, licenceRevoke, licenceSurrender, licenceSuspend } from './licences.ts';
import { manifestAttach } from './manifests.ts';
import { organisationRegister, organisationSetKyc, productRegister, tokenCreate, tokenRevoke } from './organisations.ts';
import { shipmentBook, shipmentCancel, shipmentClear, shipmentDeliver, shipmentReturn, shipmentShip } from './shipments.ts';
import { ledgerSweep } from './sweep.ts';
import { siteRegister, unitsDecommission, unitsDeploy, unitsReportLost, unitsReturn } from './units.ts';

export const handlers: { [K in CommandKind]: Handler<K> } = {
  'organisation.register': organisationRegister,
  'organisation.set_kyc': organisationSetKyc,
  'product.register': productRegister,
  'token.create': tokenCreate,
  'token.revoke': tokenRevoke,
  'licence.create': licenceCreate,
  'licence.issue': licenceIssue,
  'licence.suspend': licenceSuspend,
  'licence.reinstate': licenceReinstate,
  'licence.revoke': licenceRevoke,
  'licence.surrender': licenceSurrender,
  'licence.amend': licenceAmend,
  'allocation.create': allocationCreate,
  'allocation.resize': allocationResize,
  'shipment.book': shipmentBook,
  'shipment.ship': shipmentShip,
  'shipment.clear': shipmentClear,
  'shipment.deliver': shipmentDeliver,
  'shipment.cancel': shipmentCancel,
  'shipment.return': shipmentReturn,
  'manifest.attach': manifestAttach,
  'site.register': siteRegister,
  'units.deploy': unitsDeploy,
  'units.decommission': unitsDecommission,
  'units.report_lost': unitsReportLost,
  'units.return': unitsReturn,
  'ledger.sweep': ledgerSweep,
};
