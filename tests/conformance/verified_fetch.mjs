// An IPFS client nobody here wrote, pointed at Deworker's trustless gateway and nowhere else.
//
//   node verified_fetch.mjs GATEWAY_URL fetch CID[/PATH] ...   @helia/verified-fetch on a Helia node with no
//       libp2p (createHeliaLight + @helia/http): no bitswap, no delegated routers, one trustless gateway (ours),
//       which it asks for raw blocks (?format=raw) and verifies one by one. Prints per argument:
//       {"arg", "status", "sha256", "size"} of the file's content (status != 200: the error text instead).
//   node verified_fetch.mjs GATEWAY_URL car CID ...   fetches GATEWAY_URL/ipfs/CID?format=car, checks the
//       Content-Type, hashes every block against its CID with multiformats' sha256 (@ipld/car parses the
//       stream), then walks the DAG with ipfs-unixfs-exporter over those blocks only. Prints per CID:
//       {"cid", "contentType", "roots", "blocks", "entries": [{"path", "type", "sha256", "size"}]}
//       (a directory's entries are listed recursively; a file is one entry with path "").
//
// Anything unexpected (a block that does not hash to its CID, a missing block) exits non-zero.
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'

import { CarBlockIterator } from '@ipld/car'
import { createVerifiedFetch } from '@helia/verified-fetch'
import { withHTTP } from '@helia/http'
import { createHeliaLight } from 'helia'
import { exporter, recursive } from 'ipfs-unixfs-exporter'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'

const [gateway, mode, ...args] = process.argv.slice(2)
const hex = (bytes) => createHash('sha256').update(bytes).digest('hex')

async function fetchMode () {
  const helia = await createHeliaLight({ start: false })
  withHTTP(helia, {
    delegatedRouters: [],
    recursiveGateways: [gateway],
    allowInsecure: true,
    allowLocal: true
  })
  // Helia 7 waits forever in findProviders when it has no default router at all (its provider queue never goes
  // idle), so add one that knows no providers: only the fallback router (our gateway) is then asked.
  helia.addRouter({ name: 'no-providers', async * findProviders () {} })
  await helia.start()
  const vfetch = await createVerifiedFetch(helia)
  // AbortSignal.timeout's timer does not keep Node alive: when a Helia promise never settles (seen once, on a
  // loaded machine), Node would exit 13 ("unfinished top-level await") before the timeout fires. A ref'd
  // interval keeps the loop alive so the timeout aborts the attempt, which is then tried again (3 at most).
  const keepAlive = setInterval(() => {}, 1000)
  const attempt = async (arg) => {
    for (let i = 1; ; i++) {
      try {
        const response = await vfetch(`ipfs://${arg}`, { signal: AbortSignal.timeout(60_000) })
        return [response, new Uint8Array(await response.arrayBuffer())]
      } catch (err) {
        if (i >= 3) throw err
        console.error(`${arg}: attempt ${i} failed (${err}); trying again`)
      }
    }
  }
  try {
    for (const arg of args) {
      const [response, body] = await attempt(arg)
      if (response.status !== 200) {
        console.log(JSON.stringify({ arg, status: response.status, error: new TextDecoder().decode(body) }))
      } else {
        console.log(JSON.stringify({ arg, status: 200, sha256: hex(body), size: body.length }))
      }
    }
  } finally {
    clearInterval(keepAlive)
    await vfetch.stop()
    await helia.stop()
  }
}

async function carMode () {
  for (const arg of args) {
    const response = await fetch(`${gateway}/ipfs/${arg}?format=car`, {
      headers: { accept: 'application/vnd.ipld.car; version=1; order=dfs; dups=n' }
    })
    if (response.status !== 200) throw new Error(`${arg}: HTTP ${response.status}: ${await response.text()}`)
    const contentType = response.headers.get('content-type')
    const iterator = await CarBlockIterator.fromIterable(Readable.fromWeb(response.body))
    const blocks = new Map()
    for await (const { cid, bytes } of iterator) {
      if (cid.multihash.code !== sha256.code) throw new Error(`${cid}: not sha2-256`)
      const digest = await sha256.digest(bytes)
      if (hex(digest.digest) !== hex(cid.multihash.digest)) throw new Error(`block ${cid} does not match its CID`)
      blocks.set(cid.toString(), bytes)
    }
    const blockstore = {
      async * get (cid) {
        const bytes = blocks.get(cid.toString())
        if (bytes === undefined) throw new Error(`block ${cid} is not in the CAR`)
        yield bytes
      }
    }
    const entries = []
    for await (const found of recursive(CID.parse(arg), blockstore)) {
      const path = found.path.split('/').slice(1).join('/')
      const entry = await exporter(found.cid, blockstore) // recursive() lists; exporter() opens
      if (entry.type === 'file' || entry.type === 'raw') {
        const hash = createHash('sha256')
        let size = 0
        for await (const chunk of entry.content()) {
          hash.update(chunk)
          size += chunk.length
        }
        entries.push({ path, type: 'file', sha256: hash.digest('hex'), size })
      } else {
        entries.push({ path, type: entry.type })
      }
    }
    const roots = (await iterator.getRoots()).map(String)
    console.log(JSON.stringify({ cid: arg, contentType, roots, blocks: blocks.size, entries }))
  }
}

await (mode === 'car' ? carMode() : fetchMode())
