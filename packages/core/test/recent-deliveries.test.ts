import { expect } from 'chai';

import { RecentDeliveries } from '../src/context.js';

const body = (text: string) => Buffer.from(text);
const ID = '3f0c6a52-9d1e-4b7a-8c21-5e4f7a9b0d13';

describe('RecentDeliveries (the duplicate-delivery window)', () => {
  it('finds the same bytes for the same subscription within the window, not after it', () => {
    const recent = new RecentDeliveries(100);
    expect(recent.isDuplicate(ID, body('a'), 0)).to.equal(false);
    expect(recent.isDuplicate(ID, body('a'), 99)).to.equal(true);
    expect(recent.isDuplicate('another', body('a'), 99)).to.equal(false);
    expect(recent.isDuplicate(ID, body('a'), 100)).to.equal(false);
    // Accepted again at 100, so a copy at 150 is a duplicate once more.
    expect(recent.isDuplicate(ID, body('a'), 150)).to.equal(true);
  });

  it('forgets what is past the window as new content arrives', () => {
    const recent = new RecentDeliveries(100);
    recent.isDuplicate(ID, body('a'), 0);
    recent.isDuplicate(ID, body('b'), 10);
    expect(recent.size).to.equal(2);
    recent.isDuplicate(ID, body('c'), 150);
    expect(recent.size).to.equal(1);
  });

  it('keeps content accepted again after its window in order of acceptance', () => {
    const recent = new RecentDeliveries(100);
    recent.isDuplicate(ID, body('a'), 0);
    recent.isDuplicate(ID, body('b'), 50);
    expect(recent.isDuplicate(ID, body('a'), 120)).to.equal(false);
    // b (accepted at 50) is past the window at 160; a (accepted again at 120) is not.
    recent.isDuplicate(ID, body('c'), 160);
    expect(recent.size).to.equal(2);
    expect(recent.isDuplicate(ID, body('a'), 170)).to.equal(true);
    expect(recent.isDuplicate(ID, body('b'), 170)).to.equal(false);
  });

  it('remembers at most its limit, forgetting the oldest first', () => {
    const recent = new RecentDeliveries(60_000, 3);
    for (const text of ['1', '2', '3', '4', '5']) recent.isDuplicate(ID, body(text), 0);
    expect(recent.size).to.equal(3);
    expect(recent.isDuplicate(ID, body('5'), 1)).to.equal(true);
    expect(recent.isDuplicate(ID, body('1'), 1)).to.equal(false);
  });
});
