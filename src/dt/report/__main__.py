from dt.report.tables import main

main()
