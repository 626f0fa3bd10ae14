// A new user's first visit, in a real headless Chromium: register, upload a photo from the
// upload page, see it in the grid, open it and see the original and the annotated copy,
// delete it (after confirming), log out.
// usage: node walk.mjs BASE_URL PHOTO [SCREENSHOT_DIR]
// Exits non-zero, naming the step, if anything a user would notice goes wrong.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";

const [base, photo, shots] = process.argv.slice(2);
if (!base || !photo) {
  console.error("usage: node walk.mjs BASE_URL PHOTO [SCREENSHOT_DIR]");
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const shot = async (page, name) => shots && page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
const step = async (name, fn) => {
  try { await fn(); console.log(`ok - ${name}`); }
  catch (e) { console.error(`not ok - ${name}\n${e.stack}`); await browser.close(); process.exit(1); }
};

try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.setDefaultTimeout(30_000);
  const user = `walker${Date.now()}`;

  await step("register", async () => {
    await page.goto(`${base}/register`);
    await page.fill("input[name=username]", user);
    await page.fill("input[name=password]", "a-good-passphrase");
    await Promise.all([page.waitForURL(`${base}/`), page.click("form.card button[type=submit]")]);
    assert.match(await page.textContent("main"), /No photos yet/);
    await shot(page, "01-empty-grid");
  });

  await step("weak password is explained on the form", async () => {
    const other = await browser.newPage();
    await other.goto(`${base}/register`);
    await other.fill("input[name=username]", `${user}x`);
    await other.fill("input[name=password]", "short");
    await other.click("form.card button[type=submit]");
    assert.match(await other.textContent(".error"), /at least 8 characters/);
    await other.close();
  });

  await step("upload from the page", async () => {
    await await Promise.all([page.waitForURL(`${base}/upload`), page.click("header >> text=Upload")]);
    await page.setInputFiles("input[type=file]", photo);
    await Promise.all([page.waitForURL(/\/photos\/[0-9a-f]{32}$/), page.click("form.card button[type=submit]")]);
  });

  await step("photo page refreshes itself until the annotated copy is there, then shows both", async () => {
    const imgs = page.locator("main img");
    // The upload is accepted at once and processed from the backlog; the page reloads itself.
    await imgs.nth(1).waitFor({ timeout: 30000 });
    assert.equal(await imgs.count(), 2);
    await page.waitForFunction(() => [...document.querySelectorAll("main img")].every((i) => i.complete && i.naturalWidth > 0));
    const widths = await imgs.evaluateAll((els) => els.map((i) => i.naturalWidth));
    assert.deepEqual(widths, [1600, 1600]);
    assert.match(await page.textContent("main"), /text region/);
    await shot(page, "03-photo");
  });

  await step("grid shows the thumbnail", async () => {
    await page.click("text=Gallery");
    const thumb = page.locator(".grid img");
    assert.equal(await thumb.count(), 1);
    await page.waitForFunction(() => { const i = document.querySelector(".grid img"); return i && i.complete && i.naturalWidth > 0; });
    assert.equal(await thumb.evaluate((i) => Math.max(i.naturalWidth, i.naturalHeight)), 256);
    await shot(page, "02-grid");
  });

  await step("a photo is deleted only once the owner confirms", async () => {
    await Promise.all([page.waitForURL(/\/photos\/[0-9a-f]{32}$/), page.click(".grid a")]);
    const photoUrl = page.url();
    page.once("dialog", (d) => d.dismiss());
    await page.click("text=Delete this photo");
    assert.equal(page.url(), photoUrl);
    assert.equal(await page.locator("main img").count(), 2);
    page.once("dialog", (d) => d.accept());
    await Promise.all([page.waitForURL(`${base}/`), page.click("text=Delete this photo")]);
    assert.match(await page.textContent("main"), /No photos yet/);
    assert.equal((await page.goto(photoUrl)).status(), 404);
    await page.goto(`${base}/`);
  });

  await step("log out ends the session", async () => {
    await Promise.all([page.waitForURL(`${base}/`), page.click("text=Log out")]);
    await page.goto(`${base}/upload`);
    assert.equal(new URL(page.url()).pathname, "/login");
  });
} finally {
  await browser.close();
}
