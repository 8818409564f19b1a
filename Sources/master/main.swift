print("fluxgate: not implemented yet")
