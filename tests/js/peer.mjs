// An unmodified automerge-repo client (Node), driven line by line by tests/it/interop.rs.
//
//   node peer.mjs <ws-url> [timeout-ms]
//
// Prints `ready <relay-peer-id> <own-peer-id>` once the relay has answered `join` with `peer`,
// then reads one command per line on stdin and answers each with one line on stdout:
//
//   create <key> <value>        -> url <automerge-url>      a new document {key: value}
//   find <url>                  -> doc <json>               waits until the document is ready,
//                               or unavailable              if every peer said it lacks it
//   change <url> <key> <value>  -> ok                       sets doc[key] = value
//   append <url> <key> <text>   -> ok                       types text at the end of text doc[key]
//   wait <url> <key> <value>    -> doc <json>               waits until doc[key] === value (also
//                                                           after `find` said unavailable)
//   broadcast <url> <text>      -> ok                       an ephemeral message {text} to the peers
//   heard <url> <text>          -> heard <sender-peer-id>   waits for an ephemeral message {text}
//   quit                        -> bye                      disconnects and exits 0
//
// Values are the rest of the line. A handle records its ephemeral messages from the moment it is
// created or first found, so `heard` also sees one that came before it was asked. Every wait is
// on an event (peer, handle ready, doc change, ephemeral message) and fails after the timeout
// with `error <why>` and exit code 1: never a silent hang.

import { createInterface } from "node:readline"
import { splice } from "@automerge/automerge"
import { Repo } from "@automerge/automerge-repo"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"

const [url, timeoutArg] = process.argv.slice(2)
if (!url) fail("usage: node peer.mjs <ws-url> [timeout-ms]")
const TIMEOUT_MS = Number(timeoutArg ?? 30000)

function fail(why) {
  process.stdout.write(`error ${String(why).replaceAll("\n", " ")}\n`)
  process.exit(1)
}

function within(promise, what) {
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${TIMEOUT_MS} ms waiting for ${what}`)), TIMEOUT_MS)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

const adapter = new WebSocketClientAdapter(url)
const relay = new Promise(resolve => adapter.once("peer-candidate", ({ peerId }) => resolve(peerId)))
// No storage: an ephemeral browser-like peer, as the JS client of a sync server usually is.
const repo = new Repo({ network: [adapter], peerId: `js-${process.pid}` })

const say = line => process.stdout.write(`${line}\n`)
// automerge hands 64-bit integers that do not fit a double to JS as BigInt, which JSON lacks.
const json = handle => JSON.stringify(handle.doc(), (_, v) => (typeof v === "bigint" ? `${v}n` : v))

async function waitFor(handle, key, value) {
  const matches = () => handle.doc()?.[key] === value
  if (matches()) return
  await within(
    new Promise(resolve => {
      const onChange = () => {
        if (matches()) {
          handle.off("change", onChange)
          resolve()
        }
      }
      handle.on("change", onChange)
    }),
    `${key} = ${JSON.stringify(value)} in ${handle.url} (have ${json(handle)})`,
  )
}

// Every ephemeral message each handle got since this peer first found it, so that `heard` cannot
// miss one that arrived before it was asked.
const ephemeral = new Map()

function record(handle) {
  if (!ephemeral.has(handle)) {
    const log = []
    ephemeral.set(handle, log)
    handle.on("ephemeral-message", ({ senderId, message }) => log.push({ senderId, message }))
  }
  return handle
}

async function open(docUrl, allowableStates = ["ready"]) {
  return record(await within(repo.find(docUrl, { allowableStates }), `${docUrl} to be found`))
}

const commands = {
  async create(key, ...value) {
    const handle = record(repo.create({ [key]: value.join(" ") }))
    say(`url ${handle.url}`)
  },
  async find(docUrl) {
    const handle = await open(docUrl, ["ready", "unavailable"])
    say(handle.isReady() ? `doc ${json(handle)}` : handle.state)
  },
  async change(docUrl, key, ...value) {
    const handle = await open(docUrl)
    handle.change(doc => {
      doc[key] = value.join(" ")
    })
    say("ok")
  },
  async append(docUrl, key, ...text) {
    const handle = await open(docUrl)
    const before = handle.doc()[key]
    if (typeof before !== "string") throw new Error(`${key} is not text in ${json(handle)}`)
    handle.change(doc => {
      splice(doc, [key], before.length, 0, text.join(" "))
    })
    say("ok")
  },
  async wait(docUrl, key, ...value) {
    const handle = await open(docUrl, ["ready", "unavailable"])
    await within(handle.whenReady(), `${docUrl} to arrive (it is ${handle.state})`)
    await waitFor(handle, key, value.join(" "))
    say(`doc ${json(handle)}`)
  },
  async broadcast(docUrl, ...text) {
    const handle = await open(docUrl)
    handle.broadcast({ text: text.join(" ") })
    say("ok")
  },
  async heard(docUrl, ...text) {
    const handle = await open(docUrl)
    const want = text.join(" ")
    const heard = () => ephemeral.get(handle).find(({ message }) => message?.text === want)
    if (!heard()) {
      await within(
        new Promise(resolve => {
          const onMessage = () => {
            if (heard()) {
              handle.off("ephemeral-message", onMessage)
              resolve()
            }
          }
          handle.on("ephemeral-message", onMessage)
        }),
        `an ephemeral message ${JSON.stringify(want)} on ${docUrl}`,
      )
    }
    say(`heard ${heard().senderId}`)
  },
  async quit() {
    await repo.shutdown()
    say("bye")
    process.exit(0)
  },
}

try {
  say(`ready ${await within(relay, `the relay at ${url} to answer join`)} ${repo.peerId}`)
  for await (const line of createInterface({ input: process.stdin })) {
    const [name, ...args] = line.trim().split(" ")
    if (!name) continue
    const command = commands[name]
    if (!command) fail(`unknown command ${JSON.stringify(name)}`)
    await command(...args)
  }
  // stdin closed without `quit`: the test is gone, so go too.
  await repo.shutdown()
  process.exit(0)
} catch (e) {
  fail(e?.stack ?? e)
}
