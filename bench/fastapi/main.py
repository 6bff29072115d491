# The seed's FastAPI service, verbatim apart from the delay, which comes from
# the DELAY environment variable (seconds, default 1) so that DELAY=0 can be
# compared with `items -delay 0`.
#
#   DELAY=1 python3 -m uvicorn main:app --app-dir bench/fastapi \
#       --host 127.0.0.1 --port 8082 --workers 1 \
#       --loop uvloop --http httptools --no-access-log
import asyncio
import os

from fastapi import FastAPI

DELAY = float(os.environ.get("DELAY", "1"))

app = FastAPI()


@app.get("/items/{item_id}")
async def read_item(item_id: int):
    await asyncio.sleep(DELAY)  # Simulating an I/O operation
    return {"item_id": item_id}
