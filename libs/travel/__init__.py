"""Travel: great-circle geography, route optimisation, trip dates, day plans and budgets.

Pure and deterministic, shared by the travel job types (``trip_generation``,
``itinerary_optimization``)::

    geo      Point, haversine_km, distance_matrix, path_km
    route    a day's order: nearest neighbour, 2-opt and or-opt (best_order,
             optimise_day); legs walked, ridden or driven, their fares and minutes
    dates    a trip's dates ({start, end} or {duration}) and the rules a schema cannot say
    days     a theme for each day from the interests; morning, afternoon and evening
    budget   what a trip costs by style, fitted to a stated budget, to the cent
"""
