from connectors.destination_deeplake.run import run

run()
