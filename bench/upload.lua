-- wrk script of the upload workload: every request POSTs the same 10 MiB body
-- (wrk adds its Content-Length).
wrk.method = "POST"
wrk.body = string.rep("x", 10 * 1024 * 1024)
wrk.headers["Content-Type"] = "application/octet-stream"
