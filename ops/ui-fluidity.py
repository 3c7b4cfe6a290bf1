#!/usr/bin/env python3
"""Measures the web UI's fluidity with a large fleet in real headless Chromium (one-off, not a
test): signs in, times until every room is on the map, then counts animation frames and long
tasks over 10 s of live updates on the fleet page.

    target/release/cistern demo --rooms 2100 --admin-password fluid-pass-1 \
        --http 127.0.0.1:18081 --mqtt 127.0.0.1:18831 --data /tmp/uifl/data &
    chromedriver --port=9515 &
    python3 ops/ui-fluidity.py 2100

Needs Debian's chromium and chromium-driver (ops/test.sh installs them).
"""
import sys
import json, time, urllib.request
ROOMS = int(sys.argv[1]) if len(sys.argv) > 1 else 2100
B="http://127.0.0.1:9515"
def call(m, path, body=None):
    req=urllib.request.Request(B+path, method=m, data=json.dumps(body or {}).encode(), headers={"content-type":"application/json"})
    return json.load(urllib.request.urlopen(req, timeout=300))
caps={"capabilities":{"alwaysMatch":{"goog:chromeOptions":{"binary":"/usr/bin/chromium","args":["--headless","--no-sandbox","--disable-gpu","--no-first-run","--disable-background-networking","--disable-component-update","--disable-sync","--user-data-dir=/tmp/uifl/prof-%d" % time.time_ns(),"--window-size=1600,1000"]}}}}
s=call("POST","/session",caps)["value"]["sessionId"]
def ex(js, args=None):
    return call("POST",f"/session/{s}/execute/sync",{"script":js,"args":args or []})["value"]
def exa(js):
    return call("POST",f"/session/{s}/execute/async",{"script":js,"args":[]})["value"]
call("POST",f"/session/{s}/timeouts",{"script":120000})
call("POST",f"/session/{s}/url",{"url":"http://127.0.0.1:18081/"})
time.sleep(3)
ex("document.getElementById('login-user').value='admin';document.getElementById('login-password').value='fluid-pass-1';document.getElementById('login-submit').click();")
t0=time.time()
while True:
    n=ex("return document.querySelectorAll('#map circle.room').length")
    if n>=ROOMS or time.time()-t0>120: break
    time.sleep(0.1)
print("map rooms", n, "after sign-in: %.2f s"%(time.time()-t0))
# frame rate and long tasks over 10 s of live updates on the fleet page
r=exa("""const done=arguments[arguments.length-1];let frames=0,worst=0,last=performance.now();const lt=[];
try{new PerformanceObserver(l=>{for(const e of l.getEntries())lt.push(e.duration)}).observe({type:'longtask',buffered:false});}catch(e){}
function f(t){frames++;worst=Math.max(worst,t-last);last=t;if(t-start<10000)requestAnimationFrame(f);else done({fps:frames/10,worst_frame_ms:worst,long_tasks:lt.length,longest_task_ms:Math.max(0,...lt)});}
const start=performance.now();requestAnimationFrame(f);""")
print("fleet page, 10 s:", r)
call("DELETE",f"/session/{s}")
