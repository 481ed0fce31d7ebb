// The baseline of `cargo xtask bench-sync`: the automerge-repo sync server, set up the way
// automerge-repo-sync-server sets it up (a Repo on a WebSocket server adapter and a file-system
// store, sharing nothing unasked), on a plain node:http server instead of express.
//
//   node server.mjs <data-dir> [port]
//
// Listens on 127.0.0.1 (port 0, the default, picks a free one), then prints `listening <port>`
// on stdout. Exits on SIGTERM/SIGINT.

import http from "node:http"
import { WebSocketServer } from "ws"
import { Repo } from "@automerge/automerge-repo"
import { NodeWSServerAdapter } from "@automerge/automerge-repo-network-websocket"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"

const [dir, portArg] = process.argv.slice(2)
if (!dir) {
  process.stderr.write("usage: node server.mjs <data-dir> [port]\n")
  process.exit(2)
}

const socket = new WebSocketServer({ noServer: true })
const server = http.createServer((_req, res) => {
  res.writeHead(200, { "content-type": "text/plain" })
  res.end("automerge-repo sync server (chibo baseline)\n")
})
server.on("upgrade", (request, conn, head) => {
  socket.handleUpgrade(request, conn, head, ws => socket.emit("connection", ws, request))
})

// Kept referenced for the life of the process, as the sync server does.
const repo = new Repo({
  network: [new NodeWSServerAdapter(socket)],
  storage: new NodeFSStorageAdapter(dir),
  peerId: `baseline-${process.pid}`,
  sharePolicy: async () => false,
})

// The adapter attaches its "connection" handler only once the repo has its storage id; a
// connection before that would go unanswered. Listen only after (a check per event-loop turn).
while (socket.listenerCount("connection") === 0) {
  await new Promise(resolve => setImmediate(resolve))
}
server.listen(Number(portArg ?? 0), "127.0.0.1", () => {
  process.stdout.write(`listening ${server.address().port}\n`)
})

function stop() {
  socket.close()
  server.close(() => process.exit(0))
  repo.shutdown?.()
  setTimeout(() => process.exit(0), 2000).unref()
}
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
