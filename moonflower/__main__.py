from moonflower.entry import run

run()
