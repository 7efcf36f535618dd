// The toolkit page in a real browser (headless Debian chromium driven by
// playwright-core), as an engineer meets it: NetBox's device page, the
// custom link, sign-in, a run, copy, download, sign-out; a user without
// execute_config; a wrong password. Run by tests/browser.rs, which sets up
// NetBox and the service and passes everything through the environment.
"use strict";

const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { chromium } = require("playwright-core");

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (tests/browser.rs sets it)`);
  return value;
};
const NETBOX = env("NETBOX_URL").replace(/\/$/, "");
const DEVICE_ID = env("DEVICE_ID");
const ADMIN = { user: env("NETBOX_ADMIN_USER"), password: env("NETBOX_ADMIN_PASSWORD") };
const VIEWER = { user: env("VIEWER_USER"), password: env("VIEWER_PASSWORD") };
const CONFIG_COMMAND = env("CONFIG_COMMAND");
const ARTIFACTS = env("ARTIFACTS");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

const steps = [];
function step(name) {
  steps.push(name);
  console.log(`step: ${name}`);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/// NetBox's style sheets really applied: Tabler's font and card styles.
async function assertStyled(page, what) {
  const styled = await page.evaluate(() => {
    const sheets = Array.from(document.styleSheets).filter((s) => {
      try { return s.cssRules.length > 100; } catch (e) { return true; }
    });
    const font = getComputedStyle(document.body).fontFamily;
    return { sheets: sheets.length, font };
  });
  assert.ok(styled.sheets >= 1, `${what}: NetBox's style sheets did not load`);
  assert.match(styled.font, /Inter/, `${what}: body font is ${styled.font}, not NetBox's Inter`);
}

async function signIn(page, who) {
  await page.fill("#username", who.user);
  await page.fill("#password", who.password);
  await Promise.all([page.waitForLoadState("load"), page.click("button[type=submit]")]);
}

/// Every form control has a name a screen reader can read.
async function assertLabelled(page, what) {
  const unlabelled = await page.evaluate(() =>
    Array.from(document.querySelectorAll("input, select, textarea, button"))
      .filter((el) => el.type !== "hidden" && !el.hidden)
      .filter((el) => {
        const byFor = el.id && document.querySelector(`label[for="${el.id}"]`);
        const wrapped = el.closest("label");
        const aria = el.getAttribute("aria-label") || el.getAttribute("aria-labelledby");
        const text = (el.tagName === "BUTTON" || el.tagName === "A") && el.textContent.trim();
        return !(byFor || wrapped || aria || text);
      })
      .map((el) => el.outerHTML.slice(0, 80))
  );
  assert.deepEqual(unlabelled, [], `${what}: controls without a label`);
}

/// The first Tab stops: the skip link first, then the page in reading order.
async function tabOrder(page, count) {
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  await page.focus("body");
  const order = [];
  for (let i = 0; i < count; i++) {
    await page.keyboard.press("Tab");
    order.push(await page.evaluate(() => {
      const el = document.activeElement;
      return el ? (el.id || el.textContent.trim().replace(/\s+/g, " ").slice(0, 40) || el.tagName) : "";
    }));
  }
  return order;
}

async function main() {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "nbt-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run",
    ],
    viewport: { width: 1400, height: 900 },
    acceptDownloads: true,
    permissions: ["clipboard-read", "clipboard-write"],
  });
  const failures = [];
  context.on("page", (p) => p.on("pageerror", (e) => failures.push(`page error: ${e.message}`)));

  try {
    step("log in to NetBox and open the device page");
    const netbox = context.pages()[0] || (await context.newPage());
    netbox.on("pageerror", (e) => failures.push(`page error: ${e.message}`));
    await netbox.goto(`${NETBOX}/login/?next=/dcim/devices/${DEVICE_ID}/`);
    await netbox.fill("#id_username", ADMIN.user);
    await netbox.fill("#id_password", ADMIN.password);
    await Promise.all([netbox.waitForURL(`**/dcim/devices/${DEVICE_ID}/`), netbox.click("button[type=submit]")]);
    await assertStyled(netbox, "NetBox's device page");
    await shot(netbox, "01-netbox-device-page");

    step("click the custom link");
    const link = netbox.getByRole("link", { name: "Toolkit" });
    assert.equal(await link.getAttribute("target"), "_blank", "the custom link opens a new window");
    const [page] = await Promise.all([context.waitForEvent("page"), link.click()]);
    await page.waitForLoadState("load");
    assert.match(page.url(), /\/ui\/sign-in\?next=/, `the page asks for a sign-in first: ${page.url()}`);
    await assertStyled(page, "the sign-in page");
    await assertLabelled(page, "the sign-in page");
    await shot(page, "02-sign-in");

    step("a wrong password shows NetBox's refusal");
    await signIn(page, { user: ADMIN.user, password: "not-the-password" });
    const refusal = await page.textContent("#signin-error");
    assert.match(refusal, /Invalid username\/password/, `NetBox's words are shown: ${refusal}`);
    assert.equal(await page.inputValue("#password"), "", "the password is not echoed back");
    await shot(page, "03-sign-in-refused");

    step("sign in and see the device");
    await signIn(page, ADMIN);
    await page.waitForURL(`**/ui/devices/${DEVICE_ID}`);
    assert.equal((await page.textContent("#device-name")).trim(), "ios1");
    assert.equal((await page.textContent("#ready-badge")).trim(), "Ready");
    await assertStyled(page, "the device page");
    await assertLabelled(page, "the device page");
    const order = await tabOrder(page, 4);
    assert.equal(order[0], "Skip to content", `the skip link is the first Tab stop: ${order}`);
    console.log(`tab order: ${order.join(" | ")}`);
    await shot(page, "04-device-page");

    step("filter the command list");
    await page.fill("#command-filter", "version");
    const visible = await page.$$eval("#command-table tbody tr", (rows) =>
      rows.filter((r) => !r.hidden).map((r) => r.dataset.command));
    assert.deepEqual(visible, ["show version"], `only matching commands stay: ${visible}`);
    await page.fill("#command-filter", "");

    step("the config command is marked and asks for confirmation");
    const configRow = page.locator(`#command-table tr[data-command="${CONFIG_COMMAND}"]`);
    assert.match(await configRow.textContent(), /config/);
    await configRow.getByRole("link", { name: `Run ${CONFIG_COMMAND}` }).click();
    await page.waitForSelector("#confirm");
    assert.equal(await page.getAttribute("#confirm", "required"), "", "the confirmation box is required");
    await shot(page, "05-config-form");

    step("run show version on ios1");
    await page.getByRole("link", { name: "Run show version" }).click();
    await page.waitForSelector("#run-form");
    await page.fill("#notes", "browser test");
    await Promise.all([page.waitForURL(/#result$/, { timeout: 60000 }), page.click("#run-button")]);
    const output = await page.textContent("#output");
    assert.match(output, /Cisco IOS/, `the output is shown: ${output.slice(0, 200)}`);
    assert.match(await page.textContent("#attempts"), /^\d+$/);
    assert.match(await page.textContent("#elapsed"), /^\d+ ms$/);
    const journal = await page.getAttribute("#journal-link", "href");
    assert.match(journal, /\/extras\/journal-entries\/\d+\/$/, `a journal link: ${journal}`);
    await shot(page, "06-result");

    step("copy the output");
    await page.click("#copy-output");
    await page.waitForSelector("#copy-output[data-copied=yes]");
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    assert.equal(copied, output, "the clipboard holds the output");

    step("download the output");
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download-output")]);
    assert.match(download.suggestedFilename(), /^ios1-show-version-\d{8}T\d{6}Z\.txt$/);
    const saved = path.join(ARTIFACTS, download.suggestedFilename());
    await download.saveAs(saved);
    assert.equal(fs.readFileSync(saved, "utf8"), output, "the file holds the output");

    step("the run is listed from the journal");
    await page.reload();
    assert.match(await page.textContent("#recent-table"), /show version/);
    assert.match(await page.textContent("#recent-table"), new RegExp(ADMIN.user));

    step("dark theme follows the system");
    await page.emulateMedia({ colorScheme: "dark" });
    await page.waitForFunction(() => document.documentElement.getAttribute("data-bs-theme") === "dark");
    await shot(page, "07-result-dark");
    await page.emulateMedia({ colorScheme: "light" });

    step("sign out revokes the session");
    await Promise.all([page.waitForURL(/\/ui\/sign-in\?notice=signed-out/), page.click("text=Sign out")]);
    await page.goto(page.url().replace(/\/ui\/.*/, `/ui/devices/${DEVICE_ID}`));
    assert.match(page.url(), /\/ui\/sign-in/, "signed out: the device page asks for a sign-in again");

    step("a user without execute_config does not see config commands as runnable");
    await signIn(page, VIEWER);
    await page.waitForURL(`**/ui/devices/${DEVICE_ID}`);
    const viewerRow = page.locator(`#command-table tr[data-command="${CONFIG_COMMAND}"]`);
    assert.match(await viewerRow.textContent(), /not permitted/);
    assert.equal(await viewerRow.getByRole("link").count(), 0, "no Run link for the config command");
    assert.equal(await page.getByRole("link", { name: "Run show version" }).count(), 1);
    await page.goto(page.url() + `?command=${encodeURIComponent(CONFIG_COMMAND)}`);
    assert.equal(await page.locator("#run-form").count(), 0, "no run form for a refused command");
    await shot(page, "08-viewer");
    await page.click("text=Sign out");
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  assert.deepEqual(failures, [], "no script errors in any page");
  console.log(`${steps.length} passed, 0 failed`);
}

main().catch((err) => {
  console.error(`failed at step "${steps[steps.length - 1]}": ${err.stack || err}`);
  process.exit(1);
});
