from moonflower.cli.entry import run

run()
