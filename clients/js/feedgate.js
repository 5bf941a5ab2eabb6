// feedgate browser client — written in clients/js (see README).
export {};
