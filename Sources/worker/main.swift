print("fluxgate-worker: not implemented yet")
