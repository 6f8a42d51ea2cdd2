"""`python -m dt.report`: tables and plots from run folders' results files, beside the paper's numbers."""
