export { type FaultCounts, type FaultOptions, FaultyTransport, faultyTransport } from './faultyTransport.js';
