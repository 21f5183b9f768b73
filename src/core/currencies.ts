/**
 * The currencies of ISO 4217 in which a licence's value may be stated: the alphabetic codes
 * of List One's current currencies (as the maintenance agency published it in 2025, less the
 * Bulgarian lev, BGN, which the euro replaced on 1 January 2026), 155 of them. Not its other codes: the funds codes (BOV, CHE, CHW, CLF, COU, MXV, USN, UYI, UYW),
 * the precious metals (XAU, XAG, XPD, XPT), the bond-market and accounting units (XBA to XBD,
 * XDR, XSU, XUA), the code for tests (XTS) and the one for "no currency" (XXX): none is money
 * a licence is granted in. Nor withdrawn codes (HRK, ANG, CUC, SLL, ZWL …): a value stated in
 * one could not be paid.
 *
 * A fixed list, not Intl.supportedValuesOf('currency'): that one is ICU's, so it depends on
 * how Node was built and which ICU it carries (Node 20 here, ICU 78.2: 162 codes, HRK, ANG,
 * CUC, SLL, ZWL, XDR and XSU among them, without VED). Two servers on one database built
 * otherwise would then accept and refuse the same licence, and a retried request could be
 * refused where its first try was accepted. As countries.ts does for ISO 3166-1, a change of
 * ISO 4217 is a change here, in one release for every server.
 */
const current = `
  AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BHD BIF BMD BND BOB BRL BSD
  BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN
  ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD
  IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD
  MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD
  OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP
  SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD
  UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
`;

export const currencyCodes: ReadonlySet<string> = new Set(current.trim().split(/\s+/));

export function isCurrencyCode(code: string): boolean {
  return currencyCodes.has(code);
}
