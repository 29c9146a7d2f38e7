"""The baseline: the same model behind the plainest FastAPI endpoint (no auth, no
limits, no validation beyond JSON parsing, no audit). Run by ``overhead.py``."""

from __future__ import annotations

import argparse
import json

import numpy as np
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from bastion.models import load_model


def make_app(model_path: str) -> FastAPI:
    model = load_model(model_path)
    app = FastAPI()

    @app.post("/v1/predict")
    async def predict(request: Request) -> JSONResponse:
        x = np.asarray(json.loads(await request.body())["inputs"], dtype=np.float32)
        proba = model.predict_proba(x)
        return JSONResponse({"outputs": [{"label": int(p.argmax()),
                                          "probabilities": p.tolist()} for p in proba]})

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(make_app(args.model), host="127.0.0.1", port=args.port, log_level="warning",
                access_log=False, server_header=False)
