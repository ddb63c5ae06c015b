"""
Deep ensembles from the search population: member selection, aggregation, uncertainty metrics.
"""
